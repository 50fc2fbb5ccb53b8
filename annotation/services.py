"""Writes: projects, memberships, assignments, grades (versioned, with history) and submission."""
from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from .models import (
    Assignment,
    Grade,
    GradeChange,
    JointArea,
    Membership,
    Project,
    Radiograph,
    Scheme,
    ServedSuggestion,
)
from .signals import assignment_submitted


class AssignmentClosed(Exception):
    """The assignment is already submitted; its grades are final."""


class GradeConflict(Exception):
    """At least one grade was saved from a stale version; nothing of the request was written."""

    def __init__(self, conflicts: list[dict]):
        super().__init__(f"{len(conflicts)} stale grade(s)")
        self.conflicts = conflicts


@dataclass(frozen=True)
class GradeInput:
    area: JointArea
    value: int
    version: int  # the version the client edits; 0 for a cell never saved
    # What the client believes; the server decides the stored source (see `grade_source_decide`).
    source: str = Grade.Source.MANUAL


@transaction.atomic
def project_create(
    *,
    name: str,
    slug: str,
    scheme_key: str = "svdh",
    readers_per_radiograph: int = 3,
    blinded: bool = True,
    suggestions: str = Project.Suggestions.OFF,
    description: str = "",
    reading_unit: str = Project.ReadingUnit.IMAGE,
    reading_mode: str = Project.ReadingMode.INDEPENDENT,
) -> Project:
    return Project.objects.create(
        name=name,
        slug=slug,
        scheme=Scheme.objects.get(key=scheme_key),
        readers_per_radiograph=readers_per_radiograph,
        blinded=blinded,
        suggestions=suggestions,
        description=description,
        reading_unit=reading_unit,
        reading_mode=reading_mode,
    )


def membership_set(*, user: AbstractBaseUser, project: Project, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(user=user, project=project, defaults={"role": role})
    return membership


class OptionNotOffered(Exception):
    """The project's reading mode does not allow the option asked for."""


@transaction.atomic
def project_previous_consensus_set(*, project: Project, show: bool) -> Project:
    """Show (or stop showing) the previous film's consensus beside each cell; order-known only.

    Refused to switch on in any other mode: in hidden order the previous film's grades would give
    the order away, and read film by film there is no previous film on the page.
    """
    if show and project.reading_mode != Project.ReadingMode.PAIRED_KNOWN:
        raise OptionNotOffered(project.reading_mode)
    Project.objects.filter(pk=project.pk).update(show_previous_consensus=show)
    project.show_previous_consensus = show
    return project


@transaction.atomic
def assignments_create(*, radiograph: Radiograph, readers: Iterable[AbstractBaseUser], priority: float = 0.0) -> list[Assignment]:
    created = []
    for reader in readers:
        assignment, was_created = Assignment.objects.get_or_create(
            reader=reader, radiograph=radiograph, defaults={"priority": priority}
        )
        if was_created:
            created.append(assignment)
    return created


@transaction.atomic
def project_assign_readers(
    *, project: Project, radiographs: Sequence[Radiograph], readers: Sequence[AbstractBaseUser]
) -> int:
    """Give each radiograph `readers_per_radiograph` readers, least-loaded readers first."""
    load = dict(
        Assignment.objects.filter(radiograph__project=project, reader__in=readers)
        .values_list("reader")
        .annotate(n=Count("id"))
        .order_by()
    )
    load = {reader.pk: load.get(reader.pk, 0) for reader in readers}
    by_pk = {reader.pk: reader for reader in readers}
    created = 0
    for radiograph in radiographs:
        already = set(radiograph.assignments.values_list("reader_id", flat=True))
        missing = project.readers_per_radiograph - len(already)
        candidates = sorted((pk for pk in load if pk not in already), key=lambda pk: (load[pk], pk))
        for pk in candidates[: max(missing, 0)]:
            created += len(assignments_create(radiograph=radiograph, readers=[by_pk[pk]]))
            load[pk] += 1
    return created


def grade_bulk_save(*, assignment: Assignment, user: AbstractBaseUser, items: Sequence[GradeInput]) -> list[Grade]:
    """Save several grades of one assignment atomically; all or nothing.

    Each item names the version it edits. If any is stale the whole request is refused with the
    current values, so a reader never overwrites a change they have not seen.
    """
    try:
        return _grade_bulk_save(assignment=assignment, user=user, items=items)
    except IntegrityError:
        # Two first saves of the same cell raced past the version check (possible on SQLite, which
        # has no row locks); the unique constraint refused the loser.
        current = {g.area_id: g for g in Grade.objects.filter(assignment=assignment)}
        raise GradeConflict([_conflict(item, current.get(item.area.pk)) for item in items]) from None


def _conflict(item: GradeInput, current: Grade | None) -> dict:
    return {
        "area": item.area.code,
        "your_version": item.version,
        "your_value": item.value,
        "current_version": current.version if current else 0,
        "current_value": current.value if current else None,
    }


@transaction.atomic
def _grade_bulk_save(*, assignment: Assignment, user: AbstractBaseUser, items: Sequence[GradeInput]) -> list[Grade]:
    # Every autosave of the reader's page runs this: its reads are plain SQL, because the ORM's
    # compilation of each statement cost more CPU than the database spent running it.
    area_ids = [item.area.pk for item in items]
    # Locking the assignment row serialises concurrent saves of one reading on PostgreSQL.
    status = _assignment_status_locked(assignment.pk)
    if status is None:
        raise Assignment.DoesNotExist(f"assignment {assignment.pk} does not exist")
    if status == Assignment.Status.SUBMITTED:
        raise AssignmentClosed()
    current = {grade.area_id: grade for grade in _grades_locked(assignment.pk, area_ids)}
    conflicts = [
        _conflict(item, current.get(item.area.pk))
        for item in items
        if item.version != (current[item.area.pk].version if item.area.pk in current else 0)
    ]
    if conflicts:
        raise GradeConflict(conflicts)

    served = _served_labels(assignment.pk, area_ids)
    saved, old_values, created, edited = [], [], [], []
    now = timezone.now()
    for item in items:
        grade = current.get(item.area.pk)
        source = grade_source_decide(value=item.value, served_label=served.get(item.area.pk))
        # A save of the value already stored still moves the version: another save made on the
        # same version (an older request of the same page, still on its way) must now be refused,
        # or it would overwrite the value the reader came back to.
        old_values.append(grade.value if grade is not None else None)
        if grade is None:
            grade = Grade(assignment_id=assignment.pk, area=item.area, value=item.value, source=source)
            created.append(grade)
        else:
            grade.value, grade.source, grade.version, grade.updated_at = item.value, source, grade.version + 1, now
            edited.append(grade)
        grade.area = item.area  # already loaded: the answer's area codes then cost no query per cell
        saved.append(grade)
    # One INSERT for the new cells, one UPDATE for the edited ones and one INSERT for the history
    # of every cell, whatever the number of cells: a statement per cell made a save's cost grow
    # with the cells a reader changed at once.
    if created:
        Grade.objects.bulk_create(created)
    _grades_update(edited, updated_at=now)
    _grade_changes_insert(saved, old_values, changed_by_id=user.pk, changed_at=now)

    if status == Assignment.Status.PENDING:
        Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.IN_PROGRESS, started_at=timezone.now())
    return saved


def _for_update() -> str:
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def _assignment_status_locked(assignment_id: int) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT status FROM {Assignment._meta.db_table} WHERE id = %s{_for_update()}", [assignment_id])
        row = cursor.fetchone()
    return row[0] if row else None


def _grades_locked(assignment_id: int, area_ids: Sequence[int]) -> list[Grade]:
    if not area_ids:  # "IN ()" is no SQL
        return []
    # updated_at is left out: a save overwrites it on every grade it edits.
    columns = ["id", "assignment_id", "area_id", "value", "source", "version"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(columns)} FROM {Grade._meta.db_table} "
            f"WHERE assignment_id = %s AND area_id IN ({_placeholders(area_ids)}){_for_update()}",
            [assignment_id, *area_ids],
        )
        return [Grade.from_db(connection.alias, columns, row) for row in cursor.fetchall()]


def _served_labels(assignment_id: int, area_ids: Sequence[int]) -> dict[int, int]:
    if not area_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT area_id, label FROM {ServedSuggestion._meta.db_table} "
            f"WHERE assignment_id = %s AND area_id IN ({_placeholders(area_ids)})",
            [assignment_id, *area_ids],
        )
        return dict(cursor.fetchall())


def _grade_changes_insert(
    grades: Sequence[Grade], old_values: Sequence[int | None], *, changed_by_id: int | None, changed_at: datetime.datetime
) -> None:
    """The history row of every saved cell, in one INSERT."""
    table = GradeChange._meta.db_table
    stamp = connection.ops.adapt_datetimefield_value(changed_at)
    rows = [
        (grade.pk, changed_by_id, stamp, old, grade.value, grade.source, grade.version) for grade, old in zip(grades, old_values)
    ]
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (grade_id, changed_by_id, changed_at, old_value, new_value, source, version) VALUES "
            + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows)),
            [value for row in rows for value in row],
        )


def _grades_update(grades: Sequence[Grade], *, updated_at: datetime.datetime) -> None:
    """Write the value, source and version of `grades` (rows this transaction locked) in one UPDATE."""
    if not grades:
        return
    if connection.vendor != "postgresql":
        Grade.objects.bulk_update(grades, ["value", "source", "version", "updated_at"])
        return
    # One statement over arrays: Django's bulk_update builds a CASE per column and row, which
    # cost a save more CPU than all its other queries together.
    table = Grade._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET value = v.value, source = v.source, version = v.version, updated_at = %s "
            f"FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::int[]) AS v (id, value, source, version) "
            f"WHERE {table}.id = v.id",
            [updated_at, [g.pk for g in grades], [g.value for g in grades], [g.source for g in grades], [g.version for g in grades]],
        )


def grade_source_decide(*, value: int, served_label: int | None) -> str:
    """A grade's source from the suggestion served for this reading: the client's claim is ignored.

    No suggestion served (suggestions off, no model yet, or typed before it arrived): manual. The
    served label kept: accepted. Anything else: edited.
    """
    if served_label is None:
        return Grade.Source.MANUAL
    return Grade.Source.ACCEPTED if value == served_label else Grade.Source.EDITED


@transaction.atomic
def suggestions_record_served(*, assignment: Assignment, payload: dict) -> int:
    """Remember the suggestions the reader's page is about to receive for this reading.

    `payload` is `annotation.selectors.suggestion_set_for`'s answer. A submitted reading records
    nothing: its page is read-only, so nothing served now can have informed it. Returns the rows
    written.
    """
    if not payload.get("model_version") or not payload.get("suggestions"):
        return 0
    locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if locked.status == Assignment.Status.SUBMITTED:
        return 0
    areas = {
        area.code: area
        for area in JointArea.objects.filter(
            scheme_id=locked.radiograph.project.scheme_id, body_part=locked.radiograph.body_part, code__in=list(payload["suggestions"])
        )
    }
    now = timezone.now()
    version = str(payload["model_version"])[:64]
    rows = [
        ServedSuggestion(assignment=locked, area=areas[code], label=entry["label"], model_version=version, served_at=now)
        for code, entry in payload["suggestions"].items()
        if code in areas
    ]
    # One statement per page load instead of a select and a write per area.
    ServedSuggestion.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["assignment", "area"],
        update_fields=["label", "model_version", "served_at"],
    )
    return len(rows)


@transaction.atomic
def assignment_submit(*, assignment: Assignment, seconds_spent: int = 0) -> Assignment:
    from .tasks import radiograph_progress_update_task

    locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if locked.status == Assignment.Status.SUBMITTED:
        raise AssignmentClosed()
    now = timezone.now()
    locked.status = Assignment.Status.SUBMITTED
    locked.started_at = locked.started_at or now
    locked.submitted_at = now
    locked.seconds_spent += seconds_spent
    locked.save(update_fields=["status", "started_at", "submitted_at", "seconds_spent"])
    radiograph_id, project_id = locked.radiograph_id, locked.radiograph.project_id
    transaction.on_commit(lambda: radiograph_progress_update_task.delay(radiograph_id))
    transaction.on_commit(
        lambda: assignment_submitted.send(
            sender=Assignment, assignment_id=locked.pk, radiograph_id=radiograph_id, project_id=project_id
        )
    )
    return locked


@dataclass(frozen=True)
class VisitRead:
    """One radiograph's part of a visit submission: its assignment and the grades still to save."""

    assignment: Assignment
    items: Sequence[GradeInput]


class VisitIncomplete(Exception):
    """After the save some areas of the visit are still ungraded; nothing was written."""

    def __init__(self, missing: dict[int, list[str]]):
        super().__init__(f"{sum(len(codes) for codes in missing.values())} area(s) not graded")
        self.missing = missing  # assignment pk -> area codes


@transaction.atomic
def visit_submit(*, user: AbstractBaseUser, reads: Sequence[VisitRead], seconds_spent: int = 0) -> list[Assignment]:
    """Save the last grades of every radiograph of a visit and submit them all, or nothing.

    Stale versions in any read refuse the whole request with every conflict, each naming its
    assignment. Every scored area of every read must be graded once the grades are saved. The
    reading time is the visit's; it is split evenly between its reads.
    """
    conflicts: list[dict] = []
    for read in reads:
        if not read.items:
            continue
        try:
            # Each read's save runs in its own savepoint, so one conflict does not hide the others.
            _grade_bulk_save(assignment=read.assignment, user=user, items=read.items)
        except GradeConflict as conflict:
            conflicts += [{"assignment": read.assignment.pk, **item} for item in conflict.conflicts]
    if conflicts:
        raise GradeConflict(conflicts)
    missing: dict[int, list[str]] = {}
    for read in reads:
        radiograph = read.assignment.radiograph
        graded = set(Grade.objects.filter(assignment=read.assignment).values_list("area_id", flat=True))
        areas = JointArea.objects.filter(scheme_id=radiograph.project.scheme_id, body_part=radiograph.body_part)
        codes = [area.code for area in areas if area.pk not in graded]
        if codes:
            missing[read.assignment.pk] = codes
    if missing:
        raise VisitIncomplete(missing)
    share, extra = divmod(seconds_spent, max(len(reads), 1))
    return [
        assignment_submit(assignment=read.assignment, seconds_spent=share + (1 if index < extra else 0))
        for index, read in enumerate(reads)
    ]


@transaction.atomic
def radiograph_progress_update(*, radiograph_id: int) -> Radiograph:
    """Recount submitted reads; a radiograph is read once the project's k readers have submitted."""
    radiograph = Radiograph.objects.select_for_update().select_related("project").get(pk=radiograph_id)
    counts = radiograph.assignments.aggregate(
        submitted=Count("id", filter=Q(status=Assignment.Status.SUBMITTED)),
        started=Count("id", filter=~Q(status=Assignment.Status.PENDING)),
    )
    radiograph.submitted_reads = counts["submitted"]
    if counts["submitted"] >= radiograph.project.readers_per_radiograph:
        radiograph.status = Radiograph.Status.READ
    elif counts["started"]:
        radiograph.status = Radiograph.Status.IN_READING
    else:
        radiograph.status = Radiograph.Status.WAITING
    radiograph.save(update_fields=["submitted_reads", "status"])
    return radiograph


@dataclass(frozen=True)
class RadiographAdded:
    radiograph: Radiograph
    created: bool  # False when the same pixels were already in the project


@transaction.atomic
def radiograph_add(
    *,
    project: Project,
    pseudonym: str,
    laterality: str,
    image_bytes: bytes,
    image_suffix: str,
    width: int,
    height: int,
    timepoint: str = "baseline",
    body_part: str = "hand",
    metadata: dict | None = None,
    acquired_on: datetime.date | None = None,
) -> RadiographAdded:
    """Store one radiograph; the same file twice in a project is one radiograph (by checksum)."""
    import hashlib

    from django.core.files.base import ContentFile

    from .models import Patient, Visit

    checksum = hashlib.sha256(image_bytes).hexdigest()
    existing = Radiograph.objects.filter(project=project, checksum=checksum).first()
    if existing is not None:
        return RadiographAdded(radiograph=existing, created=False)
    patient, _ = Patient.objects.get_or_create(project=project, pseudonym=pseudonym)
    visit, _ = Visit.objects.get_or_create(patient=patient, timepoint=timepoint, defaults={"acquired_on": acquired_on})
    radiograph = Radiograph(
        project=project,
        visit=visit,
        body_part=body_part,
        laterality=laterality,
        width=width,
        height=height,
        checksum=checksum,
        metadata=metadata or {},
    )
    radiograph.image.save(f"image.{image_suffix}", ContentFile(image_bytes), save=False)
    try:
        radiograph.save()
    except Exception:
        radiograph.image.delete(save=False)  # no orphan file for a row that was never written
        raise
    return RadiographAdded(radiograph=radiograph, created=True)


@transaction.atomic
def landmark_correct(*, assignment: Assignment, user: AbstractBaseUser, corrections: Sequence[tuple]) -> None:
    """Save a reader's moved joint markers as their own landmarks; the model's points stay untouched.

    `corrections` holds (Joint, x, y) in the radiograph's pixels. One reader landmark per joint and
    reader: a second move updates it.
    """
    from .models import Landmark

    locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if locked.status == Assignment.Status.SUBMITTED:
        raise AssignmentClosed()
    for joint, x, y in corrections:
        Landmark.objects.update_or_create(
            radiograph_id=locked.radiograph_id,
            joint=joint,
            source=Landmark.Source.READER,
            created_by=user,
            defaults={"x": x, "y": y},
        )


def radiograph_files_remove(*, project_id: int, checksum: str, image_name: str) -> None:
    """Delete a deleted radiograph's stored pixels and its browser renditions.

    Called after the deletion commits: a patient withdrawn from a study leaves no image behind.
    Files are per project and checksum, and a project holds one radiograph per checksum, so no
    other radiograph uses them.
    """
    from django.core.files.storage import default_storage

    from .renditions import renditions_delete

    if image_name:
        default_storage.delete(image_name)
    renditions_delete(project_id=project_id, checksum=checksum)
