from django.apps import AppConfig


class ModelingConfig(AppConfig):
    name = "modeling"
    verbose_name = "Modeling"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from annotation.models import Radiograph
        from consensus.signals import consensus_run_stored

        from .receivers import heatmaps_delete_on_delete, retrain_if_due

        # Retraining follows a stored consensus, not a submission: a version then trains on the
        # consensus of the reads that made it due.
        consensus_run_stored.connect(retrain_if_due, dispatch_uid="modeling.retrain_if_due")
        post_delete.connect(heatmaps_delete_on_delete, sender=Radiograph, dispatch_uid="modeling.heatmaps_delete")
