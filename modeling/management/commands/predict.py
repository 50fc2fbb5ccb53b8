from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from modeling import selectors, services


class Command(BaseCommand):
    help = "Write the active version's suggestions and landmarks for every radiograph still being read."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")

    def handle(self, *args, project: str, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"no project '{project}'")
        version = selectors.model_version_active(project=target)
        if version is None:
            raise CommandError(f"project '{project}' has no active model version; train and promote one first")
        count = services.suggestions_predict(model_version_id=version.pk)
        self.stdout.write(f"{version}: suggestions written for {count} radiographs")
