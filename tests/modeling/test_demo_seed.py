from __future__ import annotations

import json

import pytest

from annotation.models import Assignment, Grade, Landmark, Membership, Radiograph
from modeling.ml.phantoms import PhantomConfig
from modeling.demo import DemoPlan, demo_plan_from_dict, demo_plan_to_dict, demo_seed, demo_seed_rest

SMALL = PhantomConfig(width=256, height=320)


@pytest.mark.django_db
def test_demo_seed_builds_a_three_reader_project_with_some_films_read(schemes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        report = demo_seed(slug="demo-small", patients=2, read_radiographs=1, seed=3, config=SMALL, feet=True)
    project = report.project
    # Two whole patients: two hands and two feet each; one hand film read (half as many feet: none).
    assert (report.radiographs, report.read) == (8, 1)
    assert sorted(project.memberships.values_list("user__username", "role")) == [
        ("lead", Membership.Role.LEAD), ("reader1", "reader"), ("reader2", "reader"), ("reader3", "reader")
    ]
    assert Assignment.objects.filter(radiograph__project=project).count() == 8 * 3
    read = Radiograph.objects.get(project=project, status=Radiograph.Status.READ)
    assert read.submitted_reads == 3
    # Every hand area of svdh (16 erosion + 15 JSN) by each of the three readers.
    assert Grade.objects.filter(assignment__radiograph=read).count() == 3 * 31
    assert Radiograph.objects.filter(project=project, status=Radiograph.Status.WAITING).count() == 7
    assert Landmark.objects.filter(radiograph=read, source=Landmark.Source.IMPORT).count() == 22
    assert sorted(Radiograph.objects.filter(project=project).values_list("body_part", "laterality")) == [
        ("foot", "L"), ("foot", "L"), ("foot", "R"), ("foot", "R"), ("hand", "L"), ("hand", "L"), ("hand", "R"), ("hand", "R"),
    ]


@pytest.mark.django_db
def test_demo_seed_twice_adds_nothing(schemes):
    demo_seed(slug="demo-small", patients=1, read_radiographs=0, seed=3, config=SMALL, feet=True)
    again = demo_seed(slug="demo-small", patients=1, read_radiographs=0, seed=3, config=SMALL, feet=True)
    assert again.radiographs == 4 and Radiograph.objects.count() == 4


@pytest.mark.django_db
def test_simulated_readers_disagree_like_readers(schemes):
    report = demo_seed(slug="demo-small", patients=3, read_radiographs=6, seed=5, config=SMALL)
    radiograph = report.project.radiographs.first()
    by_reader = {}
    for grade in Grade.objects.filter(assignment__radiograph__project=report.project).select_related("assignment__reader", "area"):
        by_reader.setdefault(grade.assignment.reader.username, {})[(grade.assignment.radiograph_id, grade.area.code)] = grade.value
    assert radiograph is not None and len(by_reader) == 3
    cells = by_reader["reader1"].keys()
    disagreements = sum(len({by_reader[r][cell] for r in by_reader}) > 1 for cell in cells)
    # Three readers with their own error patterns neither agree everywhere nor nowhere.
    assert 0 < disagreements < len(cells)


@pytest.mark.django_db
def test_demo_feet_carry_foot_landmarks_and_are_read_on_the_foot_scales(schemes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        report = demo_seed(slug="demo-feet", patients=2, read_radiographs=0, read_feet=2, seed=4, config=SMALL, feet=True)
    feet = Radiograph.objects.filter(project=report.project, body_part="foot")
    assert feet.count() == 4 and report.read == 2
    read = feet.filter(status=Radiograph.Status.READ)
    assert read.count() == 2
    for radiograph in read:
        names = set(Landmark.objects.filter(radiograph=radiograph).values_list("joint__name", flat=True))
        assert names == {"mtp_ip", "mtp1", "mtp2", "mtp3", "mtp4", "mtp5"}
        grades = Grade.objects.filter(assignment__radiograph=radiograph).select_related("area")
        # 6 erosion + 6 JSN foot areas by three readers, every value inside its area's scale.
        assert grades.count() == 3 * 12
        assert all(g.area.body_part == "foot" and 0 <= g.value <= g.area.max_grade for g in grades)
        assert {g.area.max_grade for g in grades if g.area.dimension == "erosion"} == {10}
    truth = read.first().metadata["phantom_truth"]
    assert set(truth["erosion"]) == {"mtp_ip", "mtp1", "mtp2", "mtp3", "mtp4", "mtp5"}


def _grades_by_film(project):
    rows = Grade.objects.filter(assignment__radiograph__project=project).select_related(
        "assignment__reader", "assignment__radiograph__visit__patient", "area"
    )
    return {
        (g.assignment.radiograph.visit.patient.pseudonym, g.assignment.radiograph.body_part,
         g.assignment.radiograph.laterality, g.assignment.reader.username, g.area.code): g.value
        for g in rows
    }


@pytest.mark.django_db
def test_background_seed_puts_the_first_unread_films_first_and_finishes_as_the_seed_done_at_once(schemes, django_capture_on_commit_callbacks):
    args = dict(patients=3, read_radiographs=2, read_feet=1, seed=3, config=SMALL, feet=True)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = demo_seed(slug="demo-bg", background=True, **args).project
    # Before the demo serves: only the unread hands of the patient at the top of the worklists,
    # each complete (landmarks, three readers), and the rest handed to the worker.
    films = Radiograph.objects.filter(project=first)
    assert sorted(films.values_list("visit__patient__pseudonym", "body_part", "laterality")) == [
        ("DEMO-002", "hand", "L"), ("DEMO-002", "hand", "R"),
    ]
    assert not films.exclude(status=Radiograph.Status.WAITING).exists()
    for film in films:
        assert film.assignments.count() == 3
        assert Landmark.objects.filter(radiograph=film).count() == (22 if film.body_part == "hand" else 6)
    assert len(queued) == 1
    plan = demo_plan_from_dict(json.loads(json.dumps(demo_plan_to_dict(queued_plan(first, **args)))))
    assert plan == queued_plan(first, **args)

    # What the worker's task runs, against a project seeded in one go from the same plan.
    demo_seed_rest(project_id=first.pk, plan=plan)
    at_once = demo_seed(slug="demo-now", **args).project
    for project in (first, at_once):
        assert Radiograph.objects.filter(project=project).count() == 12
        assert Radiograph.objects.filter(project=project, status=Radiograph.Status.READ).count() == 3  # 2 hands, 1 foot
        assert Assignment.objects.filter(radiograph__project=project).count() == 36
    # The same reads, grade for grade, and the same worklist order.
    assert _grades_by_film(first) == _grades_by_film(at_once) != {}

    def order(project):
        return [
            (a.radiograph.visit.patient.pseudonym, a.radiograph.body_part, a.radiograph.laterality, a.priority)
            for a in Assignment.objects.filter(radiograph__project=project, reader__username="reader1").order_by("priority", "radiograph__visit__patient__pseudonym")
        ]

    assert order(first) == order(at_once)
    # Run again (a demo stopped mid-seed resumes): nothing is added twice.
    assert demo_seed_rest(project_id=first.pk, plan=plan) == 0
    assert Radiograph.objects.filter(project=first).count() == 12


def queued_plan(project, *, patients, read_radiographs, read_feet, seed, config, feet):
    return DemoPlan(patients=patients, read_radiographs=read_radiographs, read_feet=read_feet, seed=seed,
                    feet=feet, train_model=False, config=config)


@pytest.mark.django_db
def test_a_severity_spread_gives_successive_patients_rising_damage(schemes):
    plan = DemoPlan(patients=7, read_radiographs=0, read_feet=0, seed=3, feet=False, train_model=False, severity_max=3.0)
    assert [plan.severity(i) for i in range(8)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 0.0]
    project = demo_seed(slug="demo-spread", patients=7, read_radiographs=0, seed=3, config=SMALL, severity_max=3.0).project

    def damage(pseudonym):
        return sum(
            sum(grades.values())
            for film in Radiograph.objects.filter(project=project, visit__patient__pseudonym=pseudonym)
            for grades in film.metadata["phantom_truth"].values()
        )

    # The build's cohort: levels 0-1 first, 2-3 last (one patient's own effects can outweigh a
    # level step, three together do not).
    low = sum(damage(f"DEMO-00{i}") for i in (1, 2, 3))
    high = sum(damage(f"DEMO-00{i}") for i in (5, 6, 7))
    assert 2 * low < high, (low, high)
