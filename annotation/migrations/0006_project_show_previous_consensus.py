from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0005_merge_20261130_0155"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="show_previous_consensus",
            field=models.BooleanField(
                default=False,
                help_text="In paired reading with the order known, show beside each cell the consensus grade of the patient's previous film.",
            ),
        ),
    ]
