"""Change scores from submitted series, longitudinal fusion, the lead's Progression page and its exports.

A small study goes through the real import path (`consensus.progression_study.series_study_import`):
three patients, two visits a year apart, read by three readers who grade a few joints. The
grades are chosen so the change scores are known by hand.
"""
from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Membership, Project
from annotation.services import membership_set
from consensus.models import ConsensusSettings, Fusion
from consensus.progression import CONSENSUS, progression_long_csv, progression_reliability_csv, progression_report, progression_wide_csv
from consensus.progression_study import SeriesFilm, SeriesStudy, series_study_import
from consensus.services import consensus_compute
from scoring import progression as pg
from scoring.readers import SimulatedRead

from ..conftest import make_user

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client

BASE, FOLLOW = dt.date(2021, 3, 1), dt.date(2022, 3, 1)
# Erosion of MCP2 per patient, reader and visit: (baseline, follow-up). Reader 1 scores a fall for P2.
MCP2_EROSION = {
    "P1": [(1, 3), (1, 2), (1, 3)],
    "P2": [(0, 0), (2, 1), (0, 0)],
    "P3": [(1, 4), (1, 3), (1, 4)],
}
# Change per reader (columns) and patient (rows), with reader 0's JSN step of P1 added.
EXPECTED_CHANGE = np.array([[3, 1, 2], [0, -1, 0], [3, 2, 3]], dtype=float)


def _study(mode: str = "paired_known") -> SeriesStudy:
    films, reads = [], []
    for patient, per_reader in MCP2_EROSION.items():
        # The follow-up is added first: the order of a series comes from the visit dates, not the rows.
        first = len(films)
        films.append(SeriesFilm(patient, "R", "month-12", FOLLOW, {}))
        films.append(SeriesFilm(patient, "R", "baseline", BASE, {}))
        for r, (base, follow) in enumerate(per_reader):
            jsn = (0, 1) if (patient, r) == ("P1", 0) else (0, 0)
            reads.append(SimulatedRead(film=first, reader=r, grades={"erosion": {"mcp2": follow, "pip3": 0}, "jsn": {"mcp2": jsn[1]}}))
            reads.append(SimulatedRead(film=first + 1, reader=r, grades={"erosion": {"mcp2": base, "pip3": 0}, "jsn": {"mcp2": jsn[0]}}))
    return SeriesStudy(films=films, readers=["r0", "r1", "r2"], reads=reads, reading_mode=mode, true_change={})


@pytest.fixture
def study_project(schemes) -> Project:
    return series_study_import(study=_study(), slug="prog-test", name="Progression test")


def _matrix(report) -> np.ndarray:
    readers = [k for k in report.series.sources if k != CONSENSUS]
    patients = [p for p, _ in report.series.patients]
    return np.array([[report.primary[r][p] for r in readers] for p in patients])


def test_change_scores_from_submitted_series_match_the_grades_in_date_order(study_project) -> None:
    report = progression_report(project=study_project)
    assert study_project.reading_mode == Project.ReadingMode.PAIRED_KNOWN
    assert [name for _, name in report.series.patients] == ["P1", "P2", "P3"]
    np.testing.assert_array_equal(_matrix(report), EXPECTED_CHANGE)
    p1_r0 = next(r for r in report.changes if r.patient == "P1" and report.series.sources[r.source].endswith("r0"))
    assert (p1_r0.start, p1_r0.end, p1_r0.total, p1_r0.erosion, p1_r0.jsn) == ("baseline", "month-12", 3.0, 2.0, 1.0)


def test_reliability_of_change_is_the_icc_and_bruynesteyn_sdc_of_the_readers_changes(study_project) -> None:
    report = progression_report(project=study_project)
    expected = pg.change_reliability(EXPECTED_CHANGE)
    assert report.reliability.icc.icc == pytest.approx(expected.icc.icc)
    assert report.reliability.sdc == pytest.approx(expected.sdc)
    single = next(s for s in report.summaries if s.label.endswith("r0"))
    assert single.sdc_used == pytest.approx(expected.sdc * np.sqrt(3))  # one reader: k = 1


def test_reader_who_scores_a_fall_is_flagged_and_the_others_are_not(study_project) -> None:
    flags = {s.label.rsplit("-", 1)[-1]: s.regression for s in progression_report(project=study_project).summaries}
    assert flags["r1"].flagged and flags["r1"].n_negative == 1 and flags["r1"].n_joint_regressions == 1
    assert not flags["r0"].flagged and not flags["r2"].flagged


def test_longitudinal_fusion_never_lowers_a_joint_and_the_run_records_it(study_project) -> None:
    per_film = consensus_compute(project=study_project, dimension="erosion", compare_with=())
    longitudinal = consensus_compute(project=study_project, dimension="erosion", compare_with=(), fusion=Fusion.LONGITUDINAL)
    assert (per_film.fusion, longitudinal.fusion) == ("per_film", "longitudinal")
    assert longitudinal.params["fusion"] == "longitudinal"
    labels = {
        (pseudonym, timepoint, code): label
        for pseudonym, timepoint, code, label in longitudinal.labels.values_list(
            "radiograph__visit__patient__pseudonym", "radiograph__visit__timepoint", "area__code", "label"
        )
    }
    for patient in MCP2_EROSION:
        assert labels[(patient, "baseline", "mcp_E__2")] <= labels[(patient, "month-12", "mcp_E__2")]
    # Unanimous readers: the longitudinal labels are theirs where nobody scored a fall.
    assert (labels[("P1", "baseline", "mcp_E__2")], labels[("P3", "month-12", "mcp_E__2")]) == (1, 4)


def test_longitudinal_fusion_lifts_a_fall_that_every_reader_scored(schemes) -> None:
    study = _study()
    for read in study.reads:  # P2: every reader now scores 2 at baseline and 1 at follow-up
        if study.films[read.film].pseudonym == "P2":
            read.grades["erosion"]["mcp2"] = 1 if study.films[read.film].timepoint == "month-12" else 2
    project = series_study_import(study=study, slug="prog-fall", name="Fall")
    per_film = consensus_compute(project=project, dimension="erosion", compare_with=())
    longitudinal = consensus_compute(project=project, dimension="erosion", compare_with=(), fusion=Fusion.LONGITUDINAL)

    def p2(run) -> tuple[int, int]:
        rows = dict(run.labels.filter(radiograph__visit__patient__pseudonym="P2", area__code="mcp_E__2").values_list("radiograph__visit__timepoint", "label"))
        return rows["baseline"], rows["month-12"]

    assert p2(per_film) == (2, 1)
    base, follow = p2(longitudinal)
    assert base == follow


def test_wide_export_has_one_block_per_timepoint_in_date_order(study_project) -> None:
    rows = list(csv.reader(io.StringIO(progression_wide_csv(project=study_project))))
    header, body = rows[0], rows[1:]
    assert header[:7] == ["source", "patient", "T1_timepoint", "T1_date", "T1_total", "T1_erosion", "T1_jsn"]
    assert "T2_change_total" in header and "T3_timepoint" not in header
    row = next(r for r in body if r[0].endswith("r0") and r[1] == "P1")
    cell = dict(zip(header, row))
    assert (cell["T1_timepoint"], cell["T1_date"], cell["T2_timepoint"]) == ("baseline", "2021-03-01", "month-12")
    assert (cell["T1_total"], cell["T2_total"], cell["T2_change_total"]) == ("1", "4", "3")
    assert cell["T2_RH_mcp_E__2"] == "3" and cell["T1_LH_mcp_E__2"] == ""


def test_long_export_lists_totals_and_each_read_area_per_interval(study_project) -> None:
    rows = list(csv.DictReader(io.StringIO(progression_long_csv(project=study_project))))
    mine = {(r["measure"]): r["change"] for r in rows if r["source"].endswith("r1") and r["patient"] == "P2"}
    assert mine["total"] == "-1" and mine["erosion"] == "-1" and mine["RH_mcp_E__2"] == "-1" and mine["RH_pip_E__3"] == "0"


def test_lead_sees_the_progression_page_with_plot_and_flag_and_a_reader_gets_403(study_project) -> None:
    lead, reader = make_user("prog-lead"), make_user("prog-reader")
    membership_set(user=lead, project=study_project, role=Membership.Role.LEAD)
    membership_set(user=reader, project=study_project, role=Membership.Role.READER)
    url = reverse("consensus-progression", args=[study_project.pk])
    page = client_for(lead).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "polyline" in html
    expected = pg.change_reliability(EXPECTED_CHANGE)
    assert f"{expected.icc.icc:.3f}" in html
    assert html.count("scores regression") == 1
    assert client_for(reader).get(url).status_code == 403


def test_lead_chooses_longitudinal_fusion_and_a_bad_value_changes_nothing(study_project, django_capture_on_commit_callbacks) -> None:
    lead = make_user("prog-lead2")
    membership_set(user=lead, project=study_project, role=Membership.Role.LEAD)
    url = reverse("consensus-progression-fusion", args=[study_project.pk])
    client = client_for(lead)
    assert client.post(url, {"fusion": "sideways"}).status_code == 302
    assert ConsensusSettings.objects.get(project=study_project).fusion == Fusion.PER_FILM
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"fusion": "longitudinal"})
    assert ConsensusSettings.objects.get(project=study_project).fusion == Fusion.LONGITUDINAL
    # Celery runs eagerly in these tests, so the recompute the choice queued has run, both dimensions.
    assert sorted(study_project.consensus_runs.values_list("dimension", "fusion")) == [("erosion", "longitudinal"), ("jsn", "longitudinal")]


def test_compute_consensus_command_takes_the_fusion_and_defaults_to_the_projects(study_project) -> None:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("compute_consensus", project="prog-test", dimension="erosion", fusion="longitudinal", compare=[], stdout=out)
    assert "fusion longitudinal" in out.getvalue()
    ConsensusSettings.objects.filter(project=study_project).update(fusion=Fusion.LONGITUDINAL)
    call_command("compute_consensus", project="prog-test", dimension="jsn", compare=[], stdout=io.StringIO())
    assert sorted(study_project.consensus_runs.values_list("dimension", "fusion")) == [("erosion", "longitudinal"), ("jsn", "longitudinal")]


def test_reliability_export_counts_the_progressors_of_the_change_scores_it_exports(study_project) -> None:
    rows = list(csv.DictReader(io.StringIO(progression_reliability_csv(project=study_project))))
    long_rows = list(csv.DictReader(io.StringIO(progression_long_csv(project=study_project))))
    sources = {row["source"] for row in rows if row["source"] != "readers"}
    assert sources and sources == {row["source"] for row in long_rows}
    for source in sources:
        totals = [float(row["change"]) for row in long_rows if row["source"] == source and row["measure"] == "total"]
        mine = {row["measure"]: row for row in rows if row["source"] == source}
        above = mine["progressors_above_0.5"]
        assert (int(above["count"]), int(above["n"])) == (sum(t > 0.5 for t in totals), len(totals))
        assert float(mine["mean_change"]["value"]) == pytest.approx(sum(totals) / len(totals), abs=1e-4)  # written to 6 digits
    icc = next(row for row in rows if row["measure"] in ("icc_of_change", "note"))
    if icc["measure"] == "icc_of_change":
        assert float(icc["ci_low"]) <= float(icc["value"]) <= float(icc["ci_high"])
