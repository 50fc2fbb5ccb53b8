"""Lead downloads: the consensus per visit (long and RA2-DREAM wide), the agreement report, readers' grades.

Personas (tests/conftest.py): lead leads alpha and may download; reader_a and reader_b read alpha
(blinded) and get 403; other_lead and outsider cannot see alpha and get 404; staff may download.
"""
from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from consensus import exports, services
from consensus.models import AdjudicatedLabel

from ..conftest import client_for
from .conftest import areas_of, submit_grades

NAMES = ["consensus.csv", "consensus-ra2.csv", "agreement.csv", "agreement.json", "reader-grades.csv"]


@pytest.fixture
def exported(world):
    """r1 (ALPHA-PSEUDO-001, right hand) read by reader_a and reader_b; PIP 2 erosion adjudicated to 3."""
    areas = areas_of(world.alpha)
    submit_grades(world.r1, world.users["reader_a"], {a.code: 0 for a in areas} | {"pip_E__2": 2, "mcp_E__3": 1})
    submit_grades(world.r1, world.users["reader_b"], {a.code: 0 for a in areas} | {"pip_E__2": 2, "mcp_E__3": 1})
    pip2 = next(a for a in areas if a.code == "pip_E__2")
    AdjudicatedLabel.objects.create(radiograph=world.r1, area=pip2, grade=3, lead=world.users["lead"])
    for dimension in ("erosion", "jsn"):
        services.consensus_compute(project=world.alpha, dimension=dimension, aggregator="MajorityVote", compare_with=())
    return world


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_long_consensus_csv_has_one_row_per_area_with_posterior_and_gold_flag(exported) -> None:
    rows = _rows(exports.consensus_long_csv(project=exported.alpha))
    assert len(rows) == 31  # 16 erosion + 15 JSN hand areas of r1
    assert list(rows[0])[:6] == ["patient", "timepoint", "side", "area", "dimension", "label"]
    by_area = {row["area"]: row for row in rows}
    pip2, mcp3 = by_area["pip_E__2"], by_area["mcp_E__3"]
    assert (pip2["patient"], pip2["timepoint"], pip2["side"], pip2["dimension"]) == ("ALPHA-PSEUDO-001", "baseline", "RH", "erosion")
    assert (pip2["label"], pip2["p3"], pip2["p2"], pip2["is_gold"]) == ("3", "1", "0", "1")
    assert (mcp3["label"], mcp3["p1"], mcp3["is_gold"]) == ("1", "1", "0")
    jsn = next(row for row in rows if row["dimension"] == "jsn")
    assert jsn["p5"] == ""  # JSN runs 0-4: the erosion column p5 stays empty
    assert all(abs(sum(float(row[f"p{k}"] or 0) for k in range(6)) - 1) < 1e-9 for row in rows)


def test_the_ra2_csv_is_the_export_scores_sheet_of_the_consensus(exported, capsys) -> None:
    text = exports.consensus_ra2_csv(project=exported.alpha)
    call_command("export_scores", "--project", "alpha", "--source", "consensus", "--out", "-")
    assert text == capsys.readouterr().out
    (row,) = _rows(text)
    assert (row["Patient_ID"], row["RH_pip_E__2"], row["RH_mcp_E__3"], row["RH_mcp_E__2"]) == ("ALPHA-PSEUDO-001", "3", "1", "0")


def test_the_agreement_csv_and_json_carry_the_readers_and_pairs(exported) -> None:
    rows = _rows(exports.agreement_csv(project=exported.alpha))
    readers = [r for r in rows if r["scale"] == "erosion-hand" and r["kind"] == "reader_vs_consensus"]
    assert [(r["reader"], r["n"]) for r in readers] == [("reader_a", "16"), ("reader_b", "16")]
    # Both readers agree with each other everywhere; against the consensus PIP 2 differs (gold 3).
    assert readers[0]["weighted_accuracy"] != "" and float(readers[0]["within_one"]) == 1.0
    (pair,) = [r for r in rows if r["scale"] == "erosion-hand" and r["kind"] == "reader_pair"]
    assert (pair["reader"], pair["other_reader"], pair["n"], pair["weighted_accuracy"], pair["kappa"]) == ("reader_a", "reader_b", "16", "1.0", "1.0")
    reports = json.loads(exports.agreement_json(project=exported.alpha))
    assert [r["scale"]["dimension"] for r in reports] == ["erosion", "jsn"]
    assert reports[0]["pairs"][0]["exact"] == 1.0 and reports[0]["n_units"] == 16


def test_the_reader_grades_csv_lists_every_submitted_grade(exported) -> None:
    submit_grades(exported.r2, exported.users["reader_b"], {"pip_E__2": 5}, submitted=False)  # a draft is not exported
    rows = _rows(exports.reader_grades_csv(project=exported.alpha))
    assert len(rows) == 62
    assert {(r["reader"], r["grade"]) for r in rows if r["area"] == "mcp_E__3"} == {("reader_a", "1"), ("reader_b", "1")}
    assert rows[0]["patient"] == "ALPHA-PSEUDO-001" and rows[0]["side"] == "RH" and rows[0]["submitted_at"]


@pytest.mark.parametrize(
    "persona, status",
    [("lead", 200), ("staff", 200), ("reader_a", 403), ("reader_b", 403), ("other_lead", 404), ("outsider", 404), (None, 401)],
)
@pytest.mark.parametrize("name", NAMES)
def test_only_leads_and_staff_download_the_exports(exported, persona, status, name) -> None:
    user = exported.users[persona] if persona else None
    response = client_for(user).get(reverse("api-consensus-export", args=[exported.alpha.pk, name]))
    assert response.status_code == status
    if status == 200:
        assert response["Content-Disposition"] == f'attachment; filename="alpha-{name}"'
        assert response["Content-Type"].startswith("application/json" if name.endswith(".json") else "text/csv")
        assert response.content.decode() == exports.EXPORTS[name](project=exported.alpha)


def test_an_unknown_export_is_404_and_one_without_consensus_says_why(world) -> None:
    lead = client_for(world.users["lead"])
    assert lead.get(reverse("api-consensus-export", args=[world.alpha.pk, "secrets.csv"])).status_code == 404
    response = lead.get(reverse("api-consensus-export", args=[world.alpha.pk, "consensus-ra2.csv"]))
    assert response.status_code == 409 and "No consensus has been computed" in response.json()["detail"]
    assert lead.get(reverse("api-consensus-export", args=[world.alpha.pk, "consensus.csv"])).content.decode().startswith("patient,")


def test_the_dashboard_links_every_download(client, exported) -> None:
    client.force_login(exported.users["lead"])
    body = client.get(reverse("consensus-dashboard", args=[exported.alpha.pk])).content.decode()
    for name in NAMES:
        assert reverse("api-consensus-export", args=[exported.alpha.pk, name]) in body


def test_export_consensus_command_writes_the_file(exported, tmp_path) -> None:
    out = tmp_path / "consensus.csv"
    call_command("export_consensus", "--project", "alpha", "--export", "consensus.csv", "--out", str(out))
    assert out.read_text() == exports.consensus_long_csv(project=exported.alpha)
