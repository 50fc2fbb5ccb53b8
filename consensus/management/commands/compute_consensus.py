"""Compute a project's consensus now, in this process, and print what came out."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from annotation.models import Dimension, Project
from consensus import agreement_report, selectors, services
from consensus.aggregation import AGGREGATORS
from consensus.models import ConsensusRun


def _fmt(value: float | None) -> str:
    return "   –" if value is None else f"{value:.2f}"


class Command(BaseCommand):
    help = "Fuse the submitted grades of a project with an aggregator and store a new consensus run per dimension."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug or id")
        parser.add_argument("--aggregator", default=None, choices=AGGREGATORS, help="default: the project's setting (OrdinalDawidSkene)")
        parser.add_argument("--dimension", choices=Dimension.values, default=None, help="default: every dimension")
        parser.add_argument(
            "--fusion", default=None, choices=["per_film", "longitudinal"],
            help="per film, or longitudinal (a joint never falls over a patient's visits); default: the project's setting",
        )
        parser.add_argument("--params", default=None, help='aggregator parameters as JSON, e.g. \'{"n_iter": 200}\'')
        parser.add_argument(
            "--compare", nargs="*", choices=AGGREGATORS, default=None,
            help="aggregators to compare against (default: the quick ones; GLAD and MACE only when named)",
        )

    def handle(self, *args, project: str, aggregator: str | None, dimension: str | None, params: str | None, compare, **options):
        lookup = Q(slug=project) | (Q(pk=int(project)) if project.isdigit() else Q())
        found = Project.objects.filter(lookup).first()
        if found is None:
            raise CommandError(f"no project with slug or id {project!r}")
        try:
            parsed = json.loads(params) if params else None
        except json.JSONDecodeError as error:
            raise CommandError(f"--params is not JSON: {error}") from None
        if parsed is not None and not isinstance(parsed, dict):
            raise CommandError("--params must be a JSON object")
        state = services.consensus_settings_get(project=found)
        name = aggregator or state.aggregator
        fusion = options.get("fusion") or state.fusion
        dimensions = [dimension] if dimension else list(Dimension.values)
        extra = {"compare_with": compare} if compare is not None else {}
        self.stdout.write(f"Project {found.slug} ({found.name}), aggregator {name}, fusion {fusion}")
        failed = []
        for dim in dimensions:
            run = services.consensus_compute(
                project=found, dimension=dim, aggregator=name, params=parsed, trigger=ConsensusRun.Trigger.COMMAND,
                fusion=fusion, **extra,
            )
            self._summary(found, run)
            if run.status == ConsensusRun.Status.FAILED:
                failed.append(run)
        if failed:
            raise CommandError(f"{len(failed)} run(s) failed; see the errors above")

    def _summary(self, project: Project, run: ConsensusRun) -> None:
        if run.status == ConsensusRun.Status.FAILED:
            self.stdout.write(self.style.ERROR(f"{run.dimension} v{run.version} FAILED: {run.error.splitlines()[0]}"))
            return
        convergence = (
            f"{run.iterations} iterations, {'converged' if run.converged else 'NOT converged'}"
            if run.iterations is not None
            else "closed form"
        )
        self.stdout.write(
            self.style.SUCCESS(f"{run.dimension} v{run.version}")
            + f": {run.n_tasks} tasks, {run.n_readers} readers, {run.n_labels} labels, {run.n_gold} gold, "
            f"{convergence}, {run.duration_s:.2f} s"
        )
        for scale in selectors.scale_list(project=project):
            if scale.dimension != run.dimension:
                continue
            report = agreement_report.agreement_report(project=project, scale=scale)
            if not report.readers:
                continue
            self.stdout.write(f"  {scale.title}")
            width = max(len(row.reader) for row in report.readers)
            self.stdout.write(f"    {'reader':<{width}}  {'n':>5}  weighted_acc  within_one  kappa")
            for row in report.readers:
                self.stdout.write(
                    f"    {row.reader:<{width}}  {row.n:>5}  {_fmt(row.weighted_accuracy):>12}  {_fmt(row.within_one):>10}  {_fmt(row.kappa):>5}"
                )
        if run.few_label_readers:
            names = ", ".join(f"{r['name']} ({r['labels']})" for r in run.few_label_readers)
            self.stdout.write(self.style.WARNING(f"  few grades, profile unreliable: {names}"))
