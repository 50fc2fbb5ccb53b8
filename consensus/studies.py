"""Simulated studies and benchmark projects: the consensus validated against a known truth, and
projects of realistic size for timing it. Not used by the product's own flows.
"""
from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone
from numpy.typing import NDArray

from annotation.models import Assignment, Grade, GradeChange, JointArea, Membership, Patient, Project, Radiograph, Visit
from annotation.services import (
    GradeInput,
    assignment_submit,
    assignments_create,
    grade_bulk_save,
    membership_set,
    project_create,
    radiograph_add,
)
from scoring import readers as simulator

from .models import AdjudicatedLabel, ConsensusLabel, ConsensusRun, ConsensusSettings
from .services import ConsensusError, consensus_compute


def _project_remove(*, slug: str) -> bool:
    """Delete a simulated project and its placeholder image files; True if one existed."""
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        return False
    paths = [name for name in project.radiographs.values_list("image", flat=True) if name]
    with transaction.atomic():
        # Children first, each a set-based delete, so a million grades are not collected in memory.
        AdjudicatedLabel.objects.filter(radiograph__project=project).delete()
        ConsensusLabel.objects.filter(run__project=project).delete()
        GradeChange.objects.filter(grade__assignment__radiograph__project=project).delete()
        Grade.objects.filter(assignment__radiograph__project=project).delete()
        project.delete()
    from django.core.files.storage import default_storage

    for name in paths:
        if default_storage.exists(name):
            default_storage.delete(name)
    return True


def _study_readers(*, project: Project, usernames: Sequence[str]) -> list[AbstractBaseUser]:
    from django.contrib.auth import get_user_model

    users = []
    for username in usernames:
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()  # simulated readers never log in
            user.save(update_fields=["password"])
        membership_set(user=user, project=project, role=Membership.Role.READER)
        users.append(user)
    return users


def _placeholder_png(key: str) -> bytes:
    # 8x8 grey pixels drawn from the key's hash: distinct bytes per film, as radiograph_add
    # identifies a film by its checksum.
    import hashlib

    from PIL import Image

    digest = hashlib.sha256(key.encode()).digest() + hashlib.sha256(key.encode() + b"/2").digest()
    buffer = io.BytesIO()
    Image.frombytes("L", (8, 8), digest).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class ValidationFigures:
    """One dimension of a simulated study: the consensus against the known truth."""

    dimension: str
    n_tasks: int
    n_labels: int
    accuracy: dict[str, float]  # aggregator -> share of joints given their true grade
    confusion_mad: float  # mean |estimated - true| over every cell of every reader's matrix
    run: ConsensusRun
    body_part: str = "hand"  # the study's films: feet are reported apart from hands


def simulated_study_import(*, study: simulator.SimulatedStudy, slug: str, name: str) -> Project:
    """Load a simulated study the way a real one arrives: films, assignments, saved and submitted grades.

    A project with `slug` is deleted first, with its runs and files, so importing the same study
    twice leaves one identical project. Automatic recomputes are switched off for it: the caller
    computes when every reading is in.
    """
    _project_remove(slug=slug)
    per_film = Counter(read.film for read in study.reads)
    project = project_create(name=name, slug=slug, readers_per_radiograph=max(per_film.values(), default=1))
    ConsensusSettings.objects.create(project=project, auto_recompute=False)
    users = _study_readers(project=project, usernames=[f"{slug}-{reader}" for reader in study.readers])
    areas = {
        (area.body_part, area.dimension, area.joint.name): area
        for area in JointArea.objects.filter(scheme_id=project.scheme_id).select_related("joint")
    }
    films = [
        radiograph_add(
            project=project,
            pseudonym=film.pseudonym,
            laterality=film.laterality,
            body_part=film.body_part,
            image_bytes=_placeholder_png(f"{slug}/{i}"),
            image_suffix="png",
            width=8,
            height=8,
        ).radiograph
        for i, film in enumerate(study.films)
    ]
    for read in study.reads:
        (assignment,) = assignments_create(radiograph=films[read.film], readers=[users[read.reader]])
        part = study.films[read.film].body_part
        items = [
            GradeInput(area=areas[(part, dimension, joint)], value=value, version=0)
            for dimension, grades in read.grades.items()
            for joint, value in grades.items()
            if (part, dimension, joint) in areas
        ]
        grade_bulk_save(assignment=assignment, user=users[read.reader], items=items)
        assignment_submit(assignment=assignment)
    return project


def consensus_validate(
    *, study: simulator.SimulatedStudy, slug: str, params: Mapping[str, Any] | None = None
) -> list[ValidationFigures]:
    """Import `study`, compute majority vote and Dawid-Skene per dimension, and score both against the truth.

    Majority vote is computed first, so the project's latest consensus is Dawid-Skene's.
    """
    project = simulated_study_import(study=study, slug=slug, name=f"Consensus validation ({slug})")
    radiographs = list(project.radiographs.order_by("id").values_list("id", flat=True))
    areas = {
        (area.body_part, area.dimension, area.joint.name): area.pk
        for area in JointArea.objects.filter(scheme_id=project.scheme_id).select_related("joint")
    }
    usernames = {f"{slug}-{reader}": i for i, reader in enumerate(study.readers)}
    # One body part per study: its readers' matrices are on that part's scales.
    (part,) = {film.body_part for film in study.films}
    out = []
    for dimension in sorted(study.confusion):
        truth = {
            (radiographs[i], areas[(part, dimension, joint)]): grade
            for i, film in enumerate(study.films)
            for joint, grade in film.truth.get(dimension, {}).items()
            if (part, dimension, joint) in areas
        }
        accuracy = {}
        run = None
        for aggregator in ("MajorityVote", "DawidSkene"):
            run = consensus_compute(
                project=project, dimension=dimension, aggregator=aggregator,
                params=params if aggregator == "DawidSkene" else None, compare_with=(),
            )  # fmt: skip
            if run.status != ConsensusRun.Status.OK:
                raise ConsensusError(f"{aggregator} on {dimension} failed: {run.error.splitlines()[0]}")
            labels = {(r, a): label for r, a, label in run.labels.values_list("radiograph_id", "area_id", "label")}
            accuracy[aggregator] = simulator.label_accuracy(labels, truth)
        estimated = {
            usernames[username]: np.asarray(confusion)
            for username, confusion in run.reader_estimates.filter(body_part=part).values_list("reader__username", "confusion")
        }
        true = dict(enumerate(study.confusion[dimension]))
        out.append(
            ValidationFigures(
                dimension=dimension,
                n_tasks=run.n_tasks,
                n_labels=run.n_labels,
                accuracy=accuracy,
                confusion_mad=simulator.confusion_mad(estimated, true),
                run=run,
                body_part=part,
            )
        )
    return out


@dataclass(frozen=True)
class SyntheticProject:
    project: Project
    n_labels: int
    reused: bool
    build_s: float


# Grade frequencies of a typical RA cohort: most joints undamaged, severe damage rare.
SYNTHETIC_PREVALENCE = {"erosion": (0.55, 0.2, 0.1, 0.07, 0.05, 0.03), "jsn": (0.5, 0.22, 0.14, 0.09, 0.05)}


def synthetic_project_create(
    *, slug: str, n_labels: int, n_readers: int = 5, per_radiograph: int = 3, seed: int = 0, rebuild: bool = False
) -> SyntheticProject:
    """A project of hand films holding about `n_labels` submitted grades from simulated readers.

    For timing the consensus on realistic volumes, so rows go in with set-based writes: patients,
    visits, films and assignments by `bulk_create`, grades by COPY on PostgreSQL (`bulk_create`
    elsewhere), and each grade's history row by one INSERT ... SELECT. Films have no image file.
    A project of that slug with the same number of grades is reused unless `rebuild`.
    """
    started = time.perf_counter()
    existing = Project.objects.filter(slug=slug).first()
    if existing is not None and not rebuild:
        count = Grade.objects.filter(assignment__radiograph__project=existing).count()
        expected = _synthetic_size(n_labels, per_radiograph, existing.scheme_id)[1]
        if count == expected:
            return SyntheticProject(project=existing, n_labels=count, reused=True, build_s=time.perf_counter() - started)
    _project_remove(slug=slug)
    project = project_create(name=f"Consensus benchmark ({slug})", slug=slug, readers_per_radiograph=per_radiograph)
    ConsensusSettings.objects.create(project=project, auto_recompute=False)
    users = _study_readers(project=project, usernames=[f"bench-reader-{i + 1}" for i in range(n_readers)])
    n_films, total = _synthetic_size(n_labels, per_radiograph, project.scheme_id)
    rng = np.random.default_rng(seed)
    areas = list(JointArea.objects.filter(scheme_id=project.scheme_id, body_part="hand").order_by("dimension", "order"))
    with transaction.atomic():
        patients = Patient.objects.bulk_create(
            [Patient(project=project, pseudonym=f"BENCH-{i:07d}") for i in range((n_films + 1) // 2)], batch_size=5000
        )
        visits = Visit.objects.bulk_create([Visit(patient=p, timepoint="baseline") for p in patients], batch_size=5000)
        films = Radiograph.objects.bulk_create(
            [
                Radiograph(
                    project=project, visit=visits[i // 2], laterality="LR"[i % 2], image="", width=8, height=8,
                    checksum=f"{slug}-{i}", status=Radiograph.Status.READ, submitted_reads=per_radiograph,
                )
                for i in range(n_films)
            ],
            batch_size=5000,
        )  # fmt: skip
        design = simulator.reader_sets(n_items=n_films, n_readers=n_readers, per_item=per_radiograph, rng=rng)
        now = timezone.now()
        assignments = Assignment.objects.bulk_create(
            [
                Assignment(reader=users[r], radiograph=film, status=Assignment.Status.SUBMITTED, started_at=now, submitted_at=now)
                for film, readers in zip(films, design)
                for r in readers
            ],
            batch_size=5000,
        )
        # Grades: every reading scores every hand area through its reader's confusion matrix.
        values = np.empty((len(assignments), len(areas)), dtype=np.int64)
        reader_of = design.ravel()
        for dimension, prevalence in SYNTHETIC_PREVALENCE.items():
            cols = [j for j, area in enumerate(areas) if area.dimension == dimension]
            n_grades = len(prevalence)
            truth = rng.choice(n_grades, size=(n_films, len(cols)), p=np.asarray(prevalence) / sum(prevalence))
            truth_per_reading = np.repeat(truth, per_radiograph, axis=0)
            confusion = simulator.laplace_confusions(n_readers, n_grades, rng)
            for r in range(n_readers):
                rows = reader_of == r
                values[np.ix_(rows, cols)] = simulator.draw_grades(truth_per_reading[rows], confusion[r], rng)
        assignment_ids = np.repeat([a.pk for a in assignments], len(areas))
        area_ids = np.tile([a.pk for a in areas], len(assignments))
        _grades_insert(assignment_ids=assignment_ids, area_ids=area_ids, values=values.ravel(), now=now)
        _grade_history_insert(project=project, now=now)
    if connection.vendor == "postgresql":
        # Fresh statistics for the planner: without them, queries over a million new rows can pick
        # plans that take minutes. Autovacuum would do it later; the benchmark measures now.
        tables = ", ".join(m._meta.db_table for m in (Radiograph, Assignment, Grade, GradeChange))
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")
    return SyntheticProject(project=project, n_labels=total, reused=False, build_s=time.perf_counter() - started)


def _synthetic_size(n_labels: int, per_radiograph: int, scheme_id: int) -> tuple[int, int]:
    per_reading = JointArea.objects.filter(scheme_id=scheme_id, body_part="hand").count()
    n_films = max(1, round(n_labels / (per_reading * per_radiograph)))
    return n_films, n_films * per_radiograph * per_reading


def _grades_insert(*, assignment_ids: NDArray[np.int64], area_ids: NDArray[np.int64], values: NDArray[np.int64], now) -> None:
    if connection.vendor == "postgresql":
        stamp = now.isoformat()
        text = "".join(
            f"{a}\t{b}\t{v}\tmanual\t1\t{stamp}\n" for a, b, v in zip(assignment_ids.tolist(), area_ids.tolist(), values.tolist())
        )
        table = Grade._meta.db_table
        with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {table} (assignment_id, area_id, value, source, version, updated_at) FROM STDIN"
        ) as copy:
            copy.write(text)
        return
    Grade.objects.bulk_create(
        (
            Grade(assignment_id=a, area_id=b, value=v, version=1)
            for a, b, v in zip(assignment_ids.tolist(), area_ids.tolist(), values.tolist())
        ),
        batch_size=10000,
    )


def _grade_history_insert(*, project: Project, now) -> None:
    # One history row per grade, as grade_bulk_save writes for a first save: built by the database
    # from the grade rows themselves rather than shipped back and forth a row at a time.
    change, grade, assignment, radiograph = (m._meta.db_table for m in (GradeChange, Grade, Assignment, Radiograph))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {change} (grade_id, changed_by_id, changed_at, old_value, new_value, source, version) "
            f"SELECT g.id, a.reader_id, %s, NULL, g.value, g.source, g.version FROM {grade} g "
            f"JOIN {assignment} a ON a.id = g.assignment_id JOIN {radiograph} r ON r.id = a.radiograph_id "
            f"WHERE r.project_id = %s",
            [now, project.pk],
        )
