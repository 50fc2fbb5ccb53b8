"""Time a full consensus recompute, from grade rows in the database to stored labels."""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from annotation.models import Dimension
from consensus import agreement_report, selectors, services, studies
from consensus.models import ConsensusRun

PHASES = ("read_rows", "fit", "compare", "store")


class Command(BaseCommand):
    help = (
        "Build (or reuse) a synthetic project holding about N submitted grades and time consensus_compute on it, "
        "phase by phase. The project bench-consensus-N-R is reused while its size matches; --rebuild recreates it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--labels", type=int, required=True, help="submitted grades, both dimensions together")
        parser.add_argument("--readers", type=int, default=5)
        parser.add_argument("--per-radiograph", type=int, default=3)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--repeat", type=int, default=1, help="recomputes to time")
        parser.add_argument("--rebuild", action="store_true", help="recreate the project even if it exists")
        parser.add_argument("--compare", action="store_true", help="also run the aggregator comparison at any size")
        parser.add_argument("--agreement", action="store_true", help="also time the agreement report of each scale")

    def handle(self, *args, labels: int, readers: int, per_radiograph: int, seed: int, repeat: int, rebuild: bool,
               compare: bool, agreement: bool, **options):  # fmt: skip
        if labels < 1 or readers < 2 or not 1 <= per_radiograph <= readers:
            raise CommandError("need --labels >= 1, --readers >= 2 and 1 <= --per-radiograph <= --readers")
        built = studies.synthetic_project_create(
            slug=f"bench-consensus-{labels}-{readers}", n_labels=labels, n_readers=readers,
            per_radiograph=per_radiograph, seed=seed, rebuild=rebuild,
        )  # fmt: skip
        project = built.project
        self.stdout.write(
            f"Project {project.slug} on {connection.vendor}: {built.n_labels} submitted grades, {readers} readers, "
            f"{per_radiograph} per film ({'reused' if built.reused else 'built'} in {built.build_s:.1f} s)"
        )
        extra = {"compare_max_labels": None} if compare else {}
        for attempt in range(1, repeat + 1):
            timings: dict[str, float] = {}
            started = time.perf_counter()
            runs = [
                services.consensus_compute(project=project, dimension=d, trigger=ConsensusRun.Trigger.COMMAND, timings=timings, **extra)
                for d in Dimension.values
            ]
            total = time.perf_counter() - started
            failed = [run for run in runs if run.status != ConsensusRun.Status.OK]
            if failed:
                raise CommandError(f"consensus failed: {failed[0].error.splitlines()[0]}")
            phases = "  ".join(f"{name} {timings.get(name, 0.0):6.2f} s" for name in PHASES)
            fitted = sum(run.n_labels for run in runs)
            iterations = "/".join(str(run.iterations) for run in runs)
            self.stdout.write(
                f"recompute {attempt}: {phases}  other {total - sum(timings.values()):5.2f} s  total {total:6.2f} s  "
                f"({fitted} grades, {sum(run.n_tasks for run in runs)} labels stored, EM iterations {iterations})"
            )
        if agreement:
            started = time.perf_counter()
            for scale in selectors.scale_list(project=project):
                agreement_report.agreement_report(project=project, scale=scale)
            self.stdout.write(f"agreement report, every scale: {time.perf_counter() - started:.2f} s")
