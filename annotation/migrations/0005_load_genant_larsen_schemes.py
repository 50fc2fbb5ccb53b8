"""Load the Genant-modified Sharp and Larsen schemes (and refresh the others) from annotation/data/schemes.json."""
from django.db import migrations


def load(apps, schema_editor):
    from annotation.schemes import schemes_load

    schemes_load(
        scheme_model=apps.get_model("annotation", "Scheme"),
        joint_model=apps.get_model("annotation", "Joint"),
        area_model=apps.get_model("annotation", "JointArea"),
    )


class Migration(migrations.Migration):
    dependencies = [("annotation", "0004_scheme_steps_weights_totals")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
