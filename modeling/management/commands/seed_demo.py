from django.core.management.base import BaseCommand

from modeling.demo import DEMO_PASSWORDS, demo_seed


class Command(BaseCommand):
    help = "Seed a demo project of phantom patients (hands and feet) with three simulated readers, a lead and an admin (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--project", default="demo", help="project slug")
        parser.add_argument("--patients", type=int, default=24, help="patients (two hands and two feet each)")
        parser.add_argument("--read", type=int, default=30, help="hand films already read by all three readers")
        parser.add_argument("--read-feet", type=int, default=16, help="foot films already read by all three readers")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--no-model", action="store_true", help="no model: neither the pre-trained version nor a training")
        parser.add_argument(
            "--now", action="store_true",
            help="seed every film before returning, instead of the first worklist films now and the rest "
                 "in a background task of the demo's worker",
        )

    def handle(self, *args, project: str, patients: int, read: int, read_feet: int, seed: int, no_model: bool,
               now: bool, **options):
        report = demo_seed(
            slug=project, patients=patients, read_radiographs=read, read_feet=read_feet, seed=seed, train_model=not no_model,
            feet=True, background=not now,
        )
        total = patients * 4
        if now or report.radiographs >= total:
            self.stdout.write(
                f"Project '{report.project.slug}': {report.radiographs} radiographs, {report.read} read by three readers "
                f"({report.seconds:.1f} s)."
            )
        else:
            self.stdout.write(
                f"Project '{report.project.slug}': {report.radiographs} of {total} radiographs now ({report.seconds:.1f} s); "
                f"the demo's worker seeds the rest, one complete film at a time."
            )
        self.stdout.write(
            f"Logins: reader1..reader3 / {DEMO_PASSWORDS['reader']}, lead / {DEMO_PASSWORDS['lead']}, "
            f"admin / {DEMO_PASSWORDS['admin']}"
        )
