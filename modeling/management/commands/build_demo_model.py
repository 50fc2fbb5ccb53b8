"""Build the demo's pre-trained model the way the platform trains: phantom hands and feet read by three
simulated readers, their grades fused by the consensus, `train_model`'s training on the consensus.

Run it on a scratch database (the Makefile's `demo-model` target does), never on a real one: it
creates a project of its own. The checkpoint it writes is what `seed_demo` loads as the demo's
first version, so the demo shows suggestions as soon as its worker has run inference.
"""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from modeling.demo_model import DEMO_MODEL_PATH, demo_model_build


class Command(BaseCommand):
    help = "Train the demo's pre-trained model on consensus labels of simulated readers and write its checkpoint."

    def add_arguments(self, parser):
        parser.add_argument("--out", default=str(DEMO_MODEL_PATH), help="checkpoint file to write")
        parser.add_argument("--project", default="demo-model", help="slug of the scratch project it creates")
        parser.add_argument("--patients", type=int, default=60, help="phantom patients (two hands, two feet each), all read")
        parser.add_argument("--seed", type=int, default=11, help="phantom and reader seed (the demo itself uses 7)")
        parser.add_argument("--epochs", type=int, default=40)
        parser.add_argument("--time-budget", type=float, default=None, help="seconds of training at most")
        parser.add_argument("--foot-time-budget", type=float, default=None,
                            help="seconds of training at most for the feet (default: --time-budget)")
        parser.add_argument("--threads", type=int, default=2, help="torch threads")

    def handle(self, *args, out: str, project: str, patients: int, seed: int, epochs: int,
               time_budget: float | None, foot_time_budget: float | None,
               threads: int, **options):
        try:
            summary = demo_model_build(
                out=Path(out), slug=project, patients=patients, seed=seed, epochs=epochs,
                time_budget_s=time_budget, foot_time_budget_s=foot_time_budget, num_threads=threads,
                log=self.stdout.write,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            "The lines to put in README.md's text block under \"The demo's pre-trained model\" (its test "
            "checks them against the checkpoint), replacing the block's lines:\n\n" + summary
        )
