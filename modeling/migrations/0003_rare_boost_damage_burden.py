from django.db import migrations, models


def weight_the_new_boost(apps, schema_editor):
    # The weight used to multiply P(grade >= 3); it now multiplies the damage burden, whose default is
    # 1.0. Policies left at the old default move to the new one; a weight someone chose stays.
    LearningPolicy = apps.get_model("modeling", "LearningPolicy")
    LearningPolicy.objects.filter(rare_grade_weight=0.5).update(rare_grade_weight=1.0)


class Migration(migrations.Migration):

    dependencies = [
        ('modeling', '0002_learning_policy'),
    ]

    operations = [
        migrations.AlterField(
            model_name='learningpolicy',
            name='rare_grade_weight',
            field=models.FloatField(default=1.0, help_text="Weight of the damage burden (mean expected grade over the areas, as a share of each scale's maximum) in rare_boost."),
        ),
        migrations.AlterField(
            model_name='learningpolicy',
            name='strategy',
            field=models.CharField(choices=[('rare_boost', 'Uncertainty plus a boost for likely damaged hands'), ('entropy', 'Entropy of the grade distribution'), ('margin', 'Margin between the two likeliest grades'), ('expected_error', 'Expected absolute grade error (ordinal spread)'), ('random', 'Random order (no active learning)')], default='rare_boost', max_length=16),
        ),
        migrations.RunPython(weight_the_new_boost, migrations.RunPython.noop),
    ]
