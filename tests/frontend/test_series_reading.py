"""Paired reading of a patient's series: the worklist hands out all films of one body part and side
as one task; with the order hidden the films are "Film A/B/C" in a per-reader order, nothing on
the page or in its JSON names a visit or a date, and the grades land on the right timepoint.

Personas: `paired_reader` and `second_reader` read patient S-007's three right-hand films (and
`paired_reader` also the left hand of the first visit) in a project read in hidden order.
"""
from __future__ import annotations

import datetime
import json
import re

import pytest
from django.urls import reverse

from annotation import services
from annotation.models import Assignment, Grade, JointArea, Membership, Project
from annotation.series import hidden_rank

from ..conftest import client_for, make_user, png_bytes

# Visits added out of chronological order, with names that do not sort chronologically either.
VISITS = [("tpx-month24", datetime.date(2022, 3, 17), 611), ("tpx-baseline", datetime.date(2020, 2, 11), 612),
          ("tpx-month12", datetime.date(2021, 2, 23), 613)]
SECRETS = [name for name, _, _ in VISITS] + [day.isoformat() for _, day, _ in VISITS] + [day.strftime("%d.%m.%Y") for _, day, _ in VISITS]


def _project(mode: str, slug: str):
    project = services.project_create(name=f"Paired {slug}", slug=slug, readers_per_radiograph=2, reading_mode=mode)
    readers = [make_user(f"paired_reader_{slug}"), make_user(f"second_reader_{slug}")]
    for user in readers:
        services.membership_set(user=user, project=project, role=Membership.Role.READER)
    films = {}
    for timepoint, day, seed in VISITS:
        radiograph = services.radiograph_add(
            project=project, pseudonym="S-007", laterality="R", body_part="hand", timepoint=timepoint, acquired_on=day,
            image_bytes=png_bytes(seed=seed + len(slug)), image_suffix="png", width=64, height=80,
        ).radiograph
        films[timepoint] = radiograph
        services.assignments_create(radiograph=radiograph, readers=readers)
    left = services.radiograph_add(
        project=project, pseudonym="S-007", laterality="L", body_part="hand", timepoint="tpx-baseline",
        acquired_on=VISITS[1][1], image_bytes=png_bytes(seed=700 + len(slug)), image_suffix="png", width=64, height=80,
    ).radiograph
    services.assignments_create(radiograph=left, readers=readers[:1])
    return project, readers, films


@pytest.fixture
def hidden(schemes):
    return _project(Project.ReadingMode.PAIRED_HIDDEN, "hidden")


def _config(page: str) -> dict:
    marker = '<script id="visit-config" type="application/json">'
    start = page.index(marker) + len(marker)
    return json.loads(page[start:page.index("</script>", start)])


def _image_radiograph(read: dict) -> int:
    return int(re.search(r"/radiographs/(\d+)/", read["urls"]["display_image"]).group(1))


@pytest.mark.django_db
def test_the_worklist_of_a_paired_project_hands_out_each_series_as_one_task_naming_no_timepoint(client, hidden):
    project, (reader, _), films = hidden
    client.force_login(reader)
    page = client.get(reverse("worklist", args=[project.pk])).content.decode()
    patient = films["tpx-baseline"].visit.patient_id
    right, left = reverse("series-workspace", args=[patient, "RH"]), reverse("series-workspace", args=[patient, "LH"])
    # One row per series: three right-hand films in one, the left hand alone in the other.
    assert page.count('href="/series/') == 2 and right in page and left in page
    assert "0 / 93" in page and "0 / 31" in page
    assert not [secret for secret in SECRETS if secret in page]
    response = client.get(reverse("worklist-next", args=[project.pk]))
    assert response.status_code == 302 and response.url in (right, left)


@pytest.mark.django_db
def test_hidden_order_names_films_by_letter_in_a_stable_per_reader_order_and_leaks_no_visit_or_date(client, hidden):
    project, (reader, second), films = hidden
    patient = films["tpx-baseline"].visit.patient_id
    client.force_login(reader)
    url = reverse("series-workspace", args=[patient, "RH"])
    page = client.get(url).content.decode()
    config = _config(page)
    assert [column["label"] for column in config["columns"]] == ["Film A", "Film B", "Film C"]
    assert "Film A" in page and "Film C" in page
    assert not [secret for secret in SECRETS if secret in page], "a timepoint or date is on the page"
    assert not [secret for secret in SECRETS if secret in json.dumps(config)]
    shown = [_image_radiograph(read) for read in config["reads"]]
    # The reader's order is the keyed hash's, the same on every load, and not the import order.
    expected = sorted((radiograph.pk for radiograph in films.values()), key=lambda pk: hidden_rank(reader_id=reader.pk, radiograph_id=pk))
    assert shown == expected
    assert [_image_radiograph(read) for read in _config(client.get(url).content.decode())["reads"]] == shown
    # Each film's grades go to the assignment of the radiograph whose image the page shows for it.
    for read in config["reads"]:
        assert Assignment.objects.get(pk=read["assignment"]["id"]).radiograph_id == _image_radiograph(read)
    # Another reader's order is computed from its own key.
    client.force_login(second)
    other = [_image_radiograph(read) for read in _config(client.get(url).content.decode())["reads"]]
    assert other == sorted(shown, key=lambda pk: hidden_rank(reader_id=second.pk, radiograph_id=pk))


@pytest.mark.django_db
def test_grades_submitted_in_hidden_order_land_on_the_right_timepoint_and_the_answer_names_no_visit(client, hidden):
    project, (reader, _), films = hidden
    patient = films["tpx-baseline"].visit.patient_id
    client.force_login(reader)
    config = _config(client.get(reverse("series-workspace", args=[patient, "RH"])).content.decode())
    areas = list(JointArea.objects.filter(scheme=project.scheme, body_part="hand"))
    # Film A gets 0 everywhere, Film B 1, Film C 2: the film's letter decides, not the timepoint.
    value_of_film = {read["column"]: index for index, read in enumerate(config["reads"])}
    body = [
        {"assignment": read["assignment"]["id"],
         "grades": [{"area": area.code, "value": value_of_film[read["column"]], "version": 0} for area in areas]}
        for read in config["reads"]
    ]
    response = client_for(reader).post(config["urls"]["submit"], {"reads": body, "seconds_spent": 90}, format="json")
    assert response.status_code == 200, response.json()
    assert not [secret for secret in SECRETS if secret in json.dumps(response.json())]
    by_radiograph = {_image_radiograph(read): value_of_film[read["column"]] for read in config["reads"]}
    for timepoint, radiograph in films.items():
        stored = set(Grade.objects.filter(assignment__reader=reader, assignment__radiograph=radiograph).values_list("value", flat=True))
        assert stored == {by_radiograph[radiograph.pk]}, timepoint
        assert Grade.objects.filter(assignment__reader=reader, assignment__radiograph=radiograph).count() == len(areas)
    # The left hand of the first visit is another series, untouched.
    assert not Grade.objects.filter(assignment__reader=reader, assignment__radiograph__laterality="L").exists()


@pytest.mark.django_db
def test_an_incomplete_series_is_refused_naming_the_film_by_its_letter_and_saves_nothing(client, hidden):
    project, (reader, _), films = hidden
    patient = films["tpx-baseline"].visit.patient_id
    client.force_login(reader)
    config = _config(client.get(reverse("series-workspace", args=[patient, "RH"])).content.decode())
    areas = list(JointArea.objects.filter(scheme=project.scheme, body_part="hand"))
    body = [{"assignment": read["assignment"]["id"], "grades": [{"area": a.code, "value": 0, "version": 0} for a in areas]}
            for read in config["reads"]]
    body[1]["grades"] = body[1]["grades"][:-2]
    response = client_for(reader).post(config["urls"]["submit"], {"reads": body}, format="json")
    assert response.status_code == 400
    assert response.json()["grades"][0].startswith("Film B: 2 area(s) not graded yet")
    assert not [secret for secret in SECRETS if secret in json.dumps(response.json())]
    assert not Grade.objects.filter(assignment__reader=reader).exists()


@pytest.mark.django_db
def test_known_order_shows_the_films_chronologically_under_their_timepoints(client, schemes):
    project, (reader, _), films = _project(Project.ReadingMode.PAIRED_KNOWN, "known")
    patient = films["tpx-baseline"].visit.patient_id
    client.force_login(reader)
    config = _config(client.get(reverse("series-workspace", args=[patient, "RH"])).content.decode())
    assert [(column["label"], column["date"]) for column in config["columns"]] == [
        ("tpx-baseline", "2020-02-11"), ("tpx-month12", "2021-02-23"), ("tpx-month24", "2022-03-17")
    ]
    assert [_image_radiograph(read) for read in config["reads"]] == [
        films[name].pk for name in ("tpx-baseline", "tpx-month12", "tpx-month24")
    ]


@pytest.mark.django_db
def test_a_series_is_missing_for_another_reader_and_in_a_project_read_film_by_film(client, hidden, schemes):
    project, (reader, second), films = hidden
    patient = films["tpx-baseline"].visit.patient_id
    client.force_login(second)
    # The second reader has no left-hand film of this patient.
    assert client.get(reverse("series-workspace", args=[patient, "LH"])).status_code == 404
    assert client.get(reverse("series-workspace", args=[patient, "XX"])).status_code == 404
    Project.objects.filter(pk=project.pk).update(reading_mode=Project.ReadingMode.INDEPENDENT)
    client.force_login(reader)
    assert client.get(reverse("series-workspace", args=[patient, "RH"])).status_code == 404


def _consensus_on(radiograph, value_of) -> None:
    """A consensus run per dimension that labels every area of `radiograph`."""
    from consensus.models import ConsensusLabel, ConsensusRun

    for dimension in ("erosion", "jsn"):
        run = ConsensusRun.objects.create(project=radiograph.project, dimension=dimension, aggregator="dawid_skene", version=1)
        areas = JointArea.objects.filter(scheme=radiograph.project.scheme, body_part=radiograph.body_part, dimension=dimension)
        ConsensusLabel.objects.bulk_create(
            ConsensusLabel(run=run, radiograph=radiograph, area=area, label=value_of(area), posterior=[1.0]) for area in areas
        )


@pytest.mark.django_db
def test_known_order_shows_the_previous_films_consensus_beside_each_cell_only_when_the_project_offers_it(client, schemes):
    project, (reader, second), films = _project(Project.ReadingMode.PAIRED_KNOWN, "prevcons")
    patient = films["tpx-baseline"].visit.patient_id
    _consensus_on(films["tpx-baseline"], lambda area: 1 + area.order % 2)
    # The other reader's own grade differs from the consensus: only the consensus may show.
    other_read = Assignment.objects.get(reader=second, radiograph=films["tpx-baseline"])
    area = JointArea.objects.get(scheme=project.scheme, code="mcp_E__2")
    services.grade_bulk_save(assignment=other_read, user=second, items=[services.GradeInput(area=area, value=5, version=0)])
    client.force_login(reader)
    url = reverse("series-workspace", args=[patient, "RH"])
    assert not any("previous_consensus" in read for read in _config(client.get(url).content.decode())["reads"])  # off by default

    Project.objects.filter(pk=project.pk).update(show_previous_consensus=True)
    reads = _config(client.get(url).content.decode())["reads"]
    # Month 12 shows the baseline's consensus; the baseline has no earlier film; month 24 has no consensus before it.
    assert "previous_consensus" not in reads[0] and "previous_consensus" not in reads[2]
    shown = reads[1]["previous_consensus"]
    hand_areas = JointArea.objects.filter(scheme=project.scheme, body_part="hand")
    assert shown == {a.code: 1 + a.order % 2 for a in hand_areas}
    assert shown["mcp_E__2"] != 5

    # In hidden order the option shows nothing: the previous film would give the order away.
    Project.objects.filter(pk=project.pk).update(reading_mode=Project.ReadingMode.PAIRED_HIDDEN)
    assert not any("previous_consensus" in read for read in _config(client.get(url).content.decode())["reads"])


@pytest.mark.django_db
def test_the_lead_switches_the_previous_consensus_on_in_known_order_only_and_readers_cannot(client, schemes):
    known, (reader, _), _ = _project(Project.ReadingMode.PAIRED_KNOWN, "leadknown")
    hidden, _, _ = _project(Project.ReadingMode.PAIRED_HIDDEN, "leadhidden")
    lead = make_user("series_lead")
    for project in (known, hidden):
        services.membership_set(user=lead, project=project, role=Membership.Role.LEAD)
    url = lambda project: reverse("consensus-progression-previous-consensus", args=[project.pk])  # noqa: E731
    client.force_login(reader)
    assert client.post(url(known), {"show": "1"}).status_code == 403
    assert Project.objects.get(pk=known.pk).show_previous_consensus is False
    client.force_login(lead)
    assert client.post(url(known), {"show": "1"}).status_code == 302
    assert Project.objects.get(pk=known.pk).show_previous_consensus is True
    page = client.get(reverse("consensus-progression", args=[known.pk])).content.decode()
    assert "Readers see the previous film's consensus beside each cell." in page and 'name="show" value="0"' in page
    # In hidden order the option is refused: nothing changes.
    response = client.post(url(hidden), {"show": "1"}, follow=True)
    assert "only in paired reading with the order known" in response.content.decode()
    assert Project.objects.get(pk=hidden.pk).show_previous_consensus is False
    client.post(url(known), {"show": "0"})
    assert Project.objects.get(pk=known.pk).show_previous_consensus is False


@pytest.mark.django_db
def test_in_hidden_order_a_films_own_pages_redirect_or_refuse_and_the_reader_api_names_no_visit(client, hidden):
    project, (reader, _), films = hidden
    read = Assignment.objects.get(reader=reader, radiograph=films["tpx-month12"])
    patient = films["tpx-baseline"].visit.patient_id
    client.force_login(reader)
    response = client.get(reverse("workspace", args=[read.pk]))
    assert response.status_code == 302 and response.url == reverse("series-workspace", args=[patient, "RH"])
    assert client.get(reverse("workspace-csv", args=[read.pk])).status_code == 404
    assert client.get(reverse("workspace-print", args=[read.pk])).status_code == 404
    listing = client_for(reader).get(reverse("api-worklist", args=[project.pk])).json()
    assert len(listing["assignments"]) == 4 and not [secret for secret in SECRETS if secret in json.dumps(listing)]
    detail = client_for(reader).get(reverse("api-assignment-detail", args=[read.pk])).json()
    assert detail["assignment"]["radiograph"]["timepoint"] is None
    # The lead still sees which visit each film is.
    lead = make_user("hidden_lead")
    services.membership_set(user=lead, project=project, role=Membership.Role.LEAD)
    detail = client_for(lead).get(reverse("api-radiograph-detail", args=[films["tpx-month12"].pk])).json()
    assert detail["radiograph"]["timepoint"] == "tpx-month12"
    mine = client_for(reader).get(reverse("api-radiograph-detail", args=[films["tpx-month12"].pk])).json()
    assert mine["radiograph"]["timepoint"] is None
