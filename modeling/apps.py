from django.apps import AppConfig


class ModelingConfig(AppConfig):
    name = "modeling"
    verbose_name = "Modeling"

    def ready(self) -> None:
        from annotation.signals import assignment_submitted

        from .receivers import retrain_if_due

        assignment_submitted.connect(retrain_if_due, dispatch_uid="modeling.retrain_if_due")
