from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0003_served_suggestions"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="reading_mode",
            field=models.CharField(
                choices=[
                    ("independent", "Independent (each film alone)"),
                    ("paired_known", "Paired, order known"),
                    ("paired_hidden", "Paired, order hidden"),
                ],
                default="independent",
                max_length=16,
            ),
        ),
    ]
