from django.db import migrations, models

FUSIONS = [("per_film", "Per film"), ("longitudinal", "Longitudinal (non-decreasing over visits)")]


class Migration(migrations.Migration):
    dependencies = [
        ("consensus", "0003_consensus_run_unreliable"),
    ]

    operations = [
        migrations.AddField(
            model_name="consensussettings",
            name="fusion",
            field=models.CharField(choices=FUSIONS, default="per_film", max_length=16),
        ),
        migrations.AddField(
            model_name="consensusrun",
            name="fusion",
            field=models.CharField(choices=FUSIONS, default="per_film", max_length=16),
        ),
    ]
