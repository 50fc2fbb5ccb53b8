"""Time consensus recomputes, from grade rows in the database to stored labels, phase by phase:
the first store of a project, a full recompute, and the incremental update after one more read."""
from __future__ import annotations

import os
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from annotation.models import Assignment, Dimension, Project
from consensus import agreement_report, selectors, services, studies
from consensus.models import ConsensusRun, ConsensusState

PHASES = ("read_rows", "fit", "compare", "store")


class Command(BaseCommand):
    help = (
        "Build (or reuse) synthetic projects holding about N submitted grades each and time consensus_compute on "
        "them, phase by phase: the first store (no stored consensus: every label written), a full recompute (cold "
        "EM, what changed stored) and an incremental one after one more submitted read (EM warm-started from the "
        "stored fit). The project bench-consensus-N-R is reused while its size matches; --rebuild recreates it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--labels", type=int, nargs="+", required=True, help="submitted grades, both dimensions together (one or more sizes)"
        )
        parser.add_argument("--readers", type=int, default=5)
        parser.add_argument("--per-radiograph", type=int, default=3)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--repeat", type=int, default=1, help="full and incremental recomputes to time per size")
        parser.add_argument("--rebuild", action="store_true", help="recreate the project even if it exists")
        parser.add_argument(
            "--compare", action="store_true",
            help="also run the aggregator comparison, at any size (off by default: it is not part of the consensus, "
            "and the automatic one is skipped above 200,000 grades anyway)",
        )
        parser.add_argument("--agreement", action="store_true", help="also time the agreement report of each scale")

    def handle(self, *args, labels: list[int], readers: int, per_radiograph: int, seed: int, repeat: int,
               rebuild: bool, compare: bool, agreement: bool, **options):  # fmt: skip
        labels = labels if isinstance(labels, list) else [labels]  # call_command passes one size as an int
        if min(labels) < 1 or readers < 2 or not 1 <= per_radiograph <= readers:
            raise CommandError("need --labels >= 1, --readers >= 2 and 1 <= --per-radiograph <= --readers")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        self.stdout.write(f"{connection.vendor}, {os.cpu_count()} CPUs, load average {load} at the start")
        extra = {"compare_max_labels": None if compare else 0}
        for size in labels:
            built = studies.synthetic_project_create(
                slug=f"bench-consensus-{size}-{readers}", n_labels=size, n_readers=readers,
                per_radiograph=per_radiograph, seed=seed, rebuild=rebuild,
            )  # fmt: skip
            project = built.project
            self.stdout.write(
                f"Project {project.slug}: {built.n_labels} submitted grades, {readers} readers, {per_radiograph} per film "
                f"({'reused' if built.reused else 'built'} in {built.build_s:.1f} s)"
            )
            # The first store of a project writes every label: no stored consensus to compare with.
            ConsensusState.objects.filter(project=project).delete()
            self._time(project, "first store", warm_start=False, **extra)
            for attempt in range(1, repeat + 1):
                self._time(project, f"full {attempt}", warm_start=False, **extra)
            for attempt in range(1, repeat + 1):
                # One more submitted read: take one read back, let the consensus absorb that, then
                # submit it again and time the update that follows.
                read = Assignment.objects.filter(radiograph__project=project, status=Assignment.Status.SUBMITTED).order_by("-pk").first()
                Assignment.objects.filter(pk=read.pk).update(status=Assignment.Status.IN_PROGRESS)
                self._time(project, None, warm_start=True, **extra)
                Assignment.objects.filter(pk=read.pk).update(status=Assignment.Status.SUBMITTED)
                self._time(project, f"incremental {attempt}", warm_start=True, **extra)
            if agreement:
                # What the recompute task does once per run, then what the lead's page does per view.
                started = time.perf_counter()
                runs = [selectors.consensus_run_latest(project=project, dimension=d) for d in Dimension.values]
                services.agreement_reports_store(project=project, runs=[run for run in runs if run])
                kept = time.perf_counter() - started
                started = time.perf_counter()
                for scale in selectors.scale_list(project=project):
                    agreement_report.agreement_report_cached(project=project, scale=scale)
                self.stdout.write(
                    f"  agreement report, every scale: computed and kept {kept:.2f} s, read back {time.perf_counter() - started:.3f} s"
                )

    def _time(self, project: Project, name: str | None, **options) -> None:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        runs = [
            services.consensus_compute(project=project, dimension=d, trigger=ConsensusRun.Trigger.COMMAND, timings=timings, **options)
            for d in Dimension.values
        ]
        total = time.perf_counter() - started
        failed = [run for run in runs if run.status != ConsensusRun.Status.OK]
        if failed:
            raise CommandError(f"consensus failed: {failed[0].error.splitlines()[0]}")
        if name is None:
            return
        phases = "  ".join(f"{phase} {timings.get(phase, 0.0):5.2f} s" for phase in PHASES)
        iterations = "/".join(str(run.iterations) for run in runs)
        self.stdout.write(
            f"  {name:<14} {phases}  other {total - sum(timings.values()):5.2f} s  total {total:6.2f} s  "
            f"({sum(run.n_labels for run in runs)} grades, {sum(run.n_tasks for run in runs)} labels, "
            f"{sum(run.labels_written for run in runs)} written, EM iterations {iterations})"
        )
