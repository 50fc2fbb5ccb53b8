from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from .models import Radiograph
        from .receivers import radiograph_files_remove_on_delete

        post_delete.connect(radiograph_files_remove_on_delete, sender=Radiograph, dispatch_uid="annotation.radiograph_files")
