"""Reads, with visibility enforced in the querysets.

Who sees what:
- staff see every project;
- a lead sees everything in the projects they lead;
- a reader sees the projects they belong to and only the radiographs assigned to them; in a
  blinded project never another reader's grades;
- nobody sees a project they are not a member of.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from .models import Assignment, Grade, JointArea, Landmark, Membership, Project, Radiograph

User = AbstractBaseUser | AnonymousUser


def project_list_visible(*, user: User) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def project_role(*, user: User, project: Project) -> str | None:
    """'lead', 'reader', 'staff' or None."""
    if not user.is_authenticated:
        return None
    if user.is_staff:
        return "staff"
    return Membership.objects.filter(user=user, project=project).values_list("role", flat=True).first()


def project_list_led(*, user: User) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user, memberships__role=Membership.Role.LEAD)


def project_is_led(*, user: User, project: Project) -> bool:
    """The one lead check: `user` leads `project` or is staff."""
    return project_list_led(user=user).filter(pk=project.pk).exists()


def project_get_visible(*, user: User, project_id: int) -> Project:
    """The project if `user` may see it; Http404 otherwise, as if it did not exist."""
    project = project_list_visible(user=user).filter(pk=project_id).select_related("scheme").first()
    if project is None:
        raise Http404(_("No such project."))
    return project


def project_get_led(*, user: User, project_id: int, readers_message: str) -> Project:
    """The project if `user` leads it (or is staff).

    Http404 when they cannot see it at all, PermissionDenied (403, with `readers_message`) when
    they only read in it: a reader learns the page exists but never its figures.
    """
    project = project_get_visible(user=user, project_id=project_id)
    if not project_is_led(user=user, project=project):
        raise PermissionDenied(readers_message)
    return project


def radiograph_list_visible(*, user: User) -> QuerySet[Radiograph]:
    if not user.is_authenticated:
        return Radiograph.objects.none()
    if user.is_staff:
        return Radiograph.objects.all()
    return Radiograph.objects.filter(
        Q(project__in=project_list_led(user=user))
        | Q(assignments__reader=user, project__memberships__user=user)
    ).distinct()


def assignment_list_for_reader(*, user: User, project: Project | None = None) -> QuerySet[Assignment]:
    """The reader's own assignments, in worklist order.

    A visit's radiographs stay together: each visit takes the place of its reader's most urgent
    radiograph (lowest priority) and its radiographs follow one another in their own order, so a
    re-ranking can never leave one hand of a visit far behind the other and its total unfinished.
    """
    from django.db.models import Min, OuterRef, Subquery

    if not user.is_authenticated:
        return Assignment.objects.none()
    queryset = Assignment.objects.filter(
        reader=user, radiograph__project__memberships__user=user
    ).select_related("radiograph__visit__patient", "radiograph__project")
    if project is not None:
        queryset = queryset.filter(radiograph__project=project)
    visit_first = (
        Assignment.objects.filter(reader=OuterRef("reader"), radiograph__visit=OuterRef("radiograph__visit"))
        .order_by()
        .values("radiograph__visit")
        .annotate(first=Min("priority"))
        .values("first")
    )
    return queryset.annotate(visit_priority=Subquery(visit_first)).order_by(
        "visit_priority", "radiograph__visit_id", "priority", "id"
    )


def assignment_get_for_reader(*, user: User, assignment_id: int) -> Assignment | None:
    # The worklist's filter without its ordering: one assignment needs no visit-priority subquery,
    # and every save of the reader's page starts here.
    if not user.is_authenticated:
        return None
    return (
        Assignment.objects.filter(pk=assignment_id, reader=user, radiograph__project__memberships__user=user)
        .select_related("radiograph__visit__patient", "radiograph__project")
        .order_by()
        .first()
    )


@dataclass(frozen=True)
class SaveTarget:
    """What a grade save needs of its assignment, and the scored areas of its radiograph by code."""

    assignment: Assignment
    areas: dict[str, JointArea]


# (scheme id, body part) -> (fingerprint of those area rows, their areas by code). Areas are data
# loaded by migrations, never edited through the app, yet a migration, an admin or a test may still
# change or reload them: an entry serves only while the database's fingerprint of every column of
# every row it was built from is unchanged, so it can never answer stale or another scheme's rows.
_AREAS_CACHE: dict[tuple[int, str], tuple[str, dict[str, JointArea]]] = {}


def _save_target_sql() -> str:
    assignment, radiograph, project, membership, area = (
        model._meta.db_table for model in (Assignment, Radiograph, Project, Membership, JointArea)
    )
    # The database fingerprints the area rows in the same statement, so a cached entry is checked
    # without a query of its own; PostgreSQL only (SQLite has no md5): elsewhere nothing is cached.
    stamp = (
        f"(SELECT md5(string_agg(ja::text, ',' ORDER BY ja.id)) FROM {area} ja "
        f"WHERE ja.scheme_id = p.scheme_id AND ja.body_part = r.body_part)"
        if connection.vendor == "postgresql"
        else "NULL"
    )
    # The worklist's visibility (the reader's own assignment in a project they belong to) in one
    # lean statement: the ORM's compilation of the joined lookup cost a save more CPU than any of
    # its writes.
    return (
        f"SELECT a.id, a.reader_id, a.radiograph_id, a.status, r.body_part, p.scheme_id, {stamp} "
        f"FROM {assignment} a JOIN {radiograph} r ON r.id = a.radiograph_id JOIN {project} p ON p.id = r.project_id "
        f"WHERE a.id = %s AND a.reader_id = %s "
        f"AND EXISTS (SELECT 1 FROM {membership} m WHERE m.project_id = r.project_id AND m.user_id = %s)"
    )


def save_target_for_reader(*, user: User, assignment_id: int) -> SaveTarget:
    """The reader's own assignment, as `assignment_get_own` finds it, with its radiograph's scored
    areas by code; Http404 otherwise. The assignment carries only its id, reader, radiograph and
    status: all a save reads of it."""
    if not user.is_authenticated:
        raise Http404(_("No such assignment."))
    with connection.cursor() as cursor:
        cursor.execute(_save_target_sql(), [assignment_id, user.pk, user.pk])
        row = cursor.fetchone()
    if row is None:
        raise Http404(_("No such assignment."))
    pk, reader_id, radiograph_id, status, body_part, scheme_id, stamp = row
    assignment = Assignment.from_db(
        connection.alias, ["id", "reader_id", "radiograph_id", "status"], [pk, reader_id, radiograph_id, status]
    )
    return SaveTarget(assignment=assignment, areas=areas_by_code(scheme_id=scheme_id, body_part=body_part, stamp=stamp))


def areas_by_code(*, scheme_id: int, body_part: str, stamp: str | None) -> dict[str, JointArea]:
    """The scheme's areas of one body part by code; served from memory while `stamp` (the
    database's fingerprint of those rows, None where there is none) matches the cached one."""
    key = (scheme_id, body_part)
    cached = _AREAS_CACHE.get(key)
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    areas = {area.code: area for area in JointArea.objects.filter(scheme_id=scheme_id, body_part=body_part)}
    if stamp is not None:
        _AREAS_CACHE[key] = (stamp, areas)
    return areas


def assignment_get_own(*, user: User, assignment_id: int) -> Assignment:
    """The reader's own assignment; Http404 otherwise. Another reader's assignment answers exactly
    like a missing one, so its existence is not revealed."""
    assignment = assignment_get_for_reader(user=user, assignment_id=assignment_id)
    if assignment is None:
        raise Http404(_("No such assignment."))
    return assignment


def assignment_next(*, user: User, project: Project) -> Assignment | None:
    """Continue what is started first, then the highest-priority pending read."""
    open_reads = assignment_list_for_reader(user=user, project=project).exclude(
        status=Assignment.Status.SUBMITTED
    )
    return (
        open_reads.filter(status=Assignment.Status.IN_PROGRESS).first()
        or open_reads.filter(status=Assignment.Status.PENDING).first()
    )


def assignment_progress(*, user: User, project: Project) -> dict[str, int]:
    counts = dict(
        assignment_list_for_reader(user=user, project=project)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {status: counts.get(status, 0) for status in Assignment.Status.values} | {
        "total": sum(counts.values())
    }


def assignment_list_for_lead(*, user: User, project: Project) -> QuerySet[Assignment]:
    if not project_is_led(user=user, project=project):
        return Assignment.objects.none()
    return Assignment.objects.filter(radiograph__project=project).select_related("reader", "radiograph")


def grade_list_visible(*, user: User, radiograph: Radiograph) -> QuerySet[Grade]:
    """Grades of one radiograph that this user may see.

    A lead or staff sees every reader's grades. A reader sees their own; in an unblinded project
    also the other readers' grades on radiographs assigned to them.
    """
    grades = Grade.objects.filter(assignment__radiograph=radiograph).select_related(
        "area", "assignment__reader"
    )
    if not user.is_authenticated:
        return Grade.objects.none()
    if project_is_led(user=user, project=radiograph.project):
        return grades
    own = Assignment.objects.filter(reader=user, radiograph=radiograph)
    if not own.exists():
        return Grade.objects.none()
    if radiograph.project.blinded:
        return grades.filter(assignment__reader=user)
    return grades


def landmark_list_for(*, radiograph: Radiograph, user: User) -> list[Landmark]:
    """One point per joint: the user's own correction wins over the model's and the imported one."""
    precedence = {Landmark.Source.READER: 0, Landmark.Source.MODEL: 1, Landmark.Source.IMPORT: 2}
    chosen: dict[int, Landmark] = {}
    candidates = radiograph.landmarks.select_related("joint").filter(
        Q(source__in=[Landmark.Source.MODEL, Landmark.Source.IMPORT]) | Q(created_by=user.pk)
    )
    for landmark in candidates:
        current = chosen.get(landmark.joint_id)
        if current is None or precedence[landmark.source] < precedence[current.source]:
            chosen[landmark.joint_id] = landmark
    return sorted(chosen.values(), key=lambda item: item.joint.order)


def area_list_for(*, radiograph: Radiograph) -> QuerySet[JointArea]:
    return JointArea.objects.filter(
        scheme_id=radiograph.project.scheme_id, body_part=radiograph.body_part
    ).select_related("joint")


# Reader workspace -----------------------------------------------------------------------------


def visit_totals_for_reader(*, user: User, assignment: Assignment) -> list[dict]:
    """My own grades on the other radiographs of the same visit (usually the other hand), summed.

    Only the reader's own assignments count, so a visit total never reveals another reader's values.
    """
    from django.db.models import Sum

    others = (
        assignment_list_for_reader(user=user)
        .filter(radiograph__visit_id=assignment.radiograph.visit_id)
        .exclude(pk=assignment.pk)
    )
    totals = []
    for other in others:
        sums = dict(other.grades.values_list("area__dimension").annotate(total=Sum("value")).order_by())
        totals.append(
            {
                "assignment": other.pk,
                "body_part": other.radiograph.body_part,
                "laterality": other.radiograph.laterality,
                "status": other.status,
                "erosion": sums.get("erosion") or 0,
                "jsn": sums.get("jsn") or 0,
                "graded": other.grades.count(),
                "areas": area_list_for(radiograph=other.radiograph).count(),
            }
        )
    return totals


def suggestion_set_for(*, assignment: Assignment) -> dict:
    """The model's suggested grades for one reading, or none.

    Payload: ``{"model_version": str | None, "suggestions": {area_code: {"label": int,
    "distribution": [p0, ..., p_max_grade], "heatmap_url": str (optional)}}}``. A project with
    suggestions off gets none whatever a model says. The values come from the callable named by the
    setting ``SUGGESTION_PROVIDER`` (a dotted path; called with ``radiograph=``, returns that payload
    or None); the modeling app provides it, so this app never imports modeling. Entries that do not
    fit the radiograph's scheme are dropped and logged rather than shown to a reader.
    """
    import logging

    from django.conf import settings
    from django.utils.module_loading import import_string

    empty = {"model_version": None, "suggestions": {}}
    radiograph = assignment.radiograph
    provider_path = getattr(settings, "SUGGESTION_PROVIDER", None)
    if radiograph.project.suggestions != Project.Suggestions.ASSISTED or not provider_path:
        return empty
    offered = import_string(provider_path)(radiograph=radiograph)
    if not offered or not offered.get("model_version"):
        return empty
    areas = {area.code: area for area in area_list_for(radiograph=radiograph)}
    accepted = {}
    for code, entry in (offered.get("suggestions") or {}).items():
        area = areas.get(code)
        label = entry.get("label") if isinstance(entry, dict) else None
        distribution = entry.get("distribution") if isinstance(entry, dict) else None
        valid = (
            area is not None
            and isinstance(label, int)
            and 0 <= label <= area.max_grade
            and isinstance(distribution, list)
            and len(distribution) == area.max_grade + 1
            and all(isinstance(p, (int, float)) and p >= 0 for p in distribution)
        )
        if not valid:
            logging.getLogger(__name__).warning("Dropped suggestion %r for radiograph %s: %r", code, radiograph.pk, entry)
            continue
        accepted[code] = {"label": label, "distribution": [float(p) for p in distribution]}
        if isinstance(entry.get("heatmap_url"), str):
            accepted[code]["heatmap_url"] = entry["heatmap_url"]
    return {"model_version": str(offered["model_version"]), "suggestions": accepted}


def assignment_after(*, user: User, assignment: Assignment) -> Assignment | None:
    """What `assignment_next` will give once this assignment is submitted (to warm its image early)."""
    open_reads = (
        assignment_list_for_reader(user=user, project=assignment.radiograph.project)
        .exclude(status=Assignment.Status.SUBMITTED)
        .exclude(pk=assignment.pk)
    )
    return (
        open_reads.filter(status=Assignment.Status.IN_PROGRESS).first()
        or open_reads.filter(status=Assignment.Status.PENDING).first()
    )


def radiograph_status_counts(*, project: Project) -> dict[str, int]:
    """How many of the project's radiographs wait, are being read, or are read by all k readers."""
    counts = dict(project.radiographs.values_list("status").annotate(n=Count("id")).order_by())
    return {status: counts.get(status, 0) for status in Radiograph.Status.values} | {"total": sum(counts.values())}


# Full Sharp/van der Heijde totals -----------------------------------------------------------


def scheme_max_total(*, scheme_id: int) -> int:
    """Highest total of one visit: every area's maximum, on the left and the right side (svdh: 448)."""
    from django.db.models import Sum

    per_side = JointArea.objects.filter(scheme_id=scheme_id).aggregate(total=Sum("max_grade"))["total"] or 0
    return 2 * int(per_side)


def visit_svdh_total_for_reader(*, user: User, assignment: Assignment, image_total: int | None = None) -> dict:
    """My own total over every radiograph of this visit (hands and feet), against the scheme maximum.

    `image_total` replaces this reading's saved sum (the workspace passes its draft). Complete only
    when every side of the scheme was read and every area graded, so a partial sum is never shown
    as the visit's SvdH score.
    """
    from django.db.models import Sum

    own = dict(assignment.grades.values_list("area__dimension").annotate(total=Sum("value")).order_by())
    this = image_total if image_total is not None else sum(own.values())
    others = visit_totals_for_reader(user=user, assignment=assignment)
    sides = {(assignment.radiograph.body_part, assignment.radiograph.laterality)} | {
        (o["body_part"], o["laterality"]) for o in others
    }
    parts = set(
        JointArea.objects.filter(scheme_id=assignment.radiograph.project.scheme_id).values_list("body_part", flat=True)
    )
    graded = assignment.grades.count() >= area_list_for(radiograph=assignment.radiograph).count() and all(
        o["graded"] >= o["areas"] for o in others
    )
    return {
        "total": this + sum(o["erosion"] + o["jsn"] for o in others),
        "max": scheme_max_total(scheme_id=assignment.radiograph.project.scheme_id),
        "images": 1 + len(others),
        "complete": graded and sides >= {(part, side) for part in parts for side in ("L", "R")},
    }


# Reading by visit ------------------------------------------------------------------------------

# A visit's radiographs in the order of the paper form: hands before feet, right before left.
BODY_PART_ORDER = ("hand", "foot")
SIDE_ORDER = ("R", "L")


def visit_reads_for_reader(*, user: User, visit_id: int) -> list[Assignment]:
    """The reader's own assignments on one visit, hands first, right before left; Http404 if none.

    Only the reader's assignments count: a visit with another reader's radiographs answers like a
    missing one, and radiographs of the visit not assigned to this reader are not shown.
    """
    reads = list(assignment_list_for_reader(user=user).filter(radiograph__visit_id=visit_id))
    if not reads:
        raise Http404(_("No such visit."))

    def place(read: Assignment) -> tuple:
        radiograph = read.radiograph
        part = BODY_PART_ORDER.index(radiograph.body_part) if radiograph.body_part in BODY_PART_ORDER else len(BODY_PART_ORDER)
        side = SIDE_ORDER.index(radiograph.laterality) if radiograph.laterality in SIDE_ORDER else len(SIDE_ORDER)
        return (part, side, radiograph.pk)

    return sorted(reads, key=place)
