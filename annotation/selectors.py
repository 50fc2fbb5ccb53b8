"""Reads, with visibility enforced in the querysets.

Who sees what:
- staff see every project;
- a lead sees everything in the projects they lead;
- a reader sees the projects they belong to and only the radiographs assigned to them; in a
  blinded project never another reader's grades;
- nobody sees a project they are not a member of.
"""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet

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
    """The reader's own assignments, in worklist order (priority, then age)."""
    if not user.is_authenticated:
        return Assignment.objects.none()
    queryset = Assignment.objects.filter(
        reader=user, radiograph__project__memberships__user=user
    ).select_related("radiograph__visit__patient", "radiograph__project")
    if project is not None:
        queryset = queryset.filter(radiograph__project=project)
    return queryset.order_by("priority", "id")


def assignment_get_for_reader(*, user: User, assignment_id: int) -> Assignment | None:
    return assignment_list_for_reader(user=user).filter(pk=assignment_id).first()


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
    if not project_list_led(user=user).filter(pk=project.pk).exists():
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
    if project_list_led(user=user).filter(pk=radiograph.project_id).exists():
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
