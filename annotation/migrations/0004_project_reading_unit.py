from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0003_served_suggestions'),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='reading_unit',
            field=models.CharField(choices=[('image', 'One radiograph at a time'), ('visit', 'One patient visit at a time (all its radiographs in one table)')], default='image', max_length=8),
        ),
    ]
