from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from modeling.ml.foot_phantoms import write_patient_set
from modeling.ml.phantoms import PhantomConfig


class Command(BaseCommand):
    help = (
        "Write synthetic radiographs of whole patients (LH, RH, LF, RF; 16-bit PNG), their ground truth (JSON) "
        "and a contact sheet."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, type=Path)
        parser.add_argument("--count", type=int, default=12)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--width", type=int, default=PhantomConfig.width)
        parser.add_argument("--height", type=int, default=PhantomConfig.height)

    def handle(self, *args, out: Path, count: int, seed: int, width: int, height: int, **options):
        if count < 1:
            raise CommandError("--count must be at least 1")
        paths = write_patient_set(out, count, seed, PhantomConfig(width=width, height=height))
        self.stdout.write(f"Wrote {len(paths)} radiographs with ground truth and {out / 'contact_sheet.png'}")
