from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from modeling import promotion, services
from modeling.models import ModelVersion


class Command(BaseCommand):
    help = "Train a new model version of a project, in this process (use the admin to queue it on the GPU worker)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--epochs", type=int, default=30)
        parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
        parser.add_argument("--time-budget", type=float, default=None, help="seconds of training at most")
        parser.add_argument("--promote", action="store_true", help="promote the version if it trains successfully")

    def handle(self, *args, project: str, epochs: int, device: str, time_budget: float | None, promote: bool, **options):
        try:
            target = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"no project '{project}'") from None
        config = {"time_budget_s": time_budget} if time_budget else {}
        # The run is created without enqueueing, then trained right here.
        run = services.model_version_request(project=target, epochs=epochs, device=device, config=config, enqueue=False)
        version = services.model_version_train(run_id=run.pk)
        if version.status == ModelVersion.Status.FAILED:
            raise CommandError(f"training failed: {version.training_runs.first().error}")
        figures = version.metrics.get("test") or version.metrics.get("val")
        if figures:
            self.stdout.write(f"{version}: {figures}")
        else:
            hands = (version.metrics.get("hands") or {}).get("train", 0)
            self.stdout.write(f"{version}: no held-out figures yet (no graded hand was kept apart); trained on {hands} hands")
        if promote:
            promotion.model_version_promote(version=version)
            self.stdout.write(f"{version} promoted; suggestions are queued for inference.")
