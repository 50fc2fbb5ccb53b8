"""Half-step grades, total weights, per-scheme column names and export totals: what Genant and Larsen need."""
from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("annotation", "0003_served_suggestions")]
    operations = [
        migrations.AddField(
            model_name="scheme", name="dimension_labels", field=models.JSONField(blank=True, default=dict)
        ),
        migrations.AddField(model_name="scheme", name="totals", field=models.JSONField(blank=True, default=list)),
        migrations.AddField(
            model_name="jointarea",
            name="grade_step",
            field=models.DecimalField(decimal_places=2, default=Decimal("1"), max_digits=4),
        ),
        migrations.AddField(
            model_name="jointarea", name="total_weight", field=models.PositiveSmallIntegerField(default=1)
        ),
        migrations.AlterField(
            model_name="jointarea",
            name="max_grade",
            field=models.PositiveSmallIntegerField(help_text="Highest level; the highest grade is max_grade x grade_step"),
        ),
    ]
