"""Agreement figures from stored grades, the SVG heatmap, the export source and the command."""
from __future__ import annotations

import re

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Visit
from consensus import agreement_report, selectors, services
from consensus.heatmap import colour_for, heatmap_svg
from consensus.selectors import Scale

from ..conftest import make_radiograph, make_user
from .conftest import areas_of, submit_grades

EROSION = Scale("erosion", "hand", 5)


@pytest.fixture
def three_readers(world):
    """Four radiographs: reader_a and reader_b always agree; reader_c grades one higher, capped at 5."""
    reader_c = make_user("reader_c")
    readers = [world.users["reader_a"], world.users["reader_b"], reader_c]
    radiographs = [make_radiograph(world.alpha, f"ALPHA-R{i}") for i in range(4)]
    areas = areas_of(world.alpha)
    for i, radiograph in enumerate(radiographs):
        base = {a.code: (i + k) % (a.max_grade + 1) for k, a in enumerate(areas)}
        submit_grades(radiograph, readers[0], base)
        submit_grades(radiograph, readers[1], base)
        submit_grades(radiograph, readers[2], {code: min(v + 1, 4 if "_J__" in code else 5) for code, v in base.items()})
    return world, readers, radiographs


def test_agreement_report_sets_the_one_step_reader_apart(three_readers):
    world, _readers, _radiographs = three_readers
    services.consensus_compute(project=world.alpha, dimension="erosion", aggregator="MajorityVote", compare_with=())

    report = agreement_report.agreement_report(project=world.alpha, scale=EROSION)

    rows = {row.reader: row for row in report.readers}
    assert report.n_units == 4 * 16
    assert (rows["reader_a"].weighted_accuracy, rows["reader_a"].within_one, rows["reader_a"].kappa) == (1.0, 1.0, 1.0)
    assert rows["reader_c"].within_one == 1.0 and rows["reader_c"].weighted_accuracy < 0.2
    assert rows["reader_c"].within_one_balanced == 1.0
    # reader_c's counts sit one column right of the diagonal, except where 5 is capped.
    confusion = rows["reader_c"].confusion
    assert sum(confusion[g][g + 1] for g in range(5)) + confusion[5][5] == 64
    pairs = {(p.reader_a, p.reader_b): p for p in report.pairs}
    assert (pairs[("reader_a", "reader_b")].kappa, pairs[("reader_a", "reader_b")].exact) == (1.0, 1.0)
    assert pairs[("reader_a", "reader_c")].kappa < 1.0 and pairs[("reader_a", "reader_c")].n_shared == 64
    reliability = report.reliability
    assert 0.0 < reliability.alpha < 1.0 and reliability.alpha_units == 64
    # Totals per radiograph: reader_c's are higher by a near-constant, so absolute agreement suffers.
    assert reliability.icc_subjects == 4 and reliability.icc_readers == ["reader_a", "reader_b", "reader_c"]
    assert reliability.icc_ci_low <= reliability.icc <= reliability.icc_ci_high
    assert reliability.sdc > 0


def test_split_by_group_uses_only_that_groups_areas(three_readers):
    world, _readers, _radiographs = three_readers
    services.consensus_compute(project=world.alpha, dimension="erosion", aggregator="MajorityVote", compare_with=())
    by_group = {g: agreement_report.agreement_report(project=world.alpha, scale=EROSION, group=g).n_units for g in selectors.group_list(project=world.alpha)}
    assert by_group == {"pip": 4 * 4, "mcp": 4 * 6, "wrist": 4 * 6}


def test_a_pseudo_reader_joins_the_tables_but_not_reliability(three_readers):
    world, _readers, radiographs = three_readers
    services.consensus_compute(project=world.alpha, dimension="erosion", aggregator="MajorityVote", compare_with=())
    model = {(r.pk, a.pk): 0 for r in radiographs for a in areas_of(world.alpha, dimension="erosion")}

    report = agreement_report.agreement_report(project=world.alpha, scale=EROSION, extra_readers={"model v1": model})

    (row,) = [r for r in report.readers if r.is_model]
    assert (row.reader, row.reader_id, row.n) == ("model v1", None, 64)
    assert "model v1" not in report.reliability.icc_readers
    assert sum(1 for p in report.pairs if "model v1" in (p.reader_a, p.reader_b)) == 3


def test_the_queue_lists_split_votes_first_and_drops_adjudicated_areas(world):
    areas = areas_of(world.alpha)
    zeros = {a.code: 0 for a in areas}
    submit_grades(world.r1, world.users["reader_a"], zeros | {"pip_E__2": 0, "mcp_J__3": 1})
    submit_grades(world.r1, world.users["reader_b"], zeros | {"pip_E__2": 4, "mcp_J__3": 2})
    for dimension in ("erosion", "jsn"):
        services.consensus_compute(project=world.alpha, dimension=dimension, aggregator="MajorityVote", compare_with=())

    queue = selectors.disputed_list(project=world.alpha)
    assert [item.area_code for item in queue] == ["mcp_J__3", "pip_E__2"] or [item.area_code for item in queue] == ["pip_E__2", "mcp_J__3"]
    assert {item.area_code: item.spread for item in queue} == {"pip_E__2": 4, "mcp_J__3": 1}
    assert dict(next(i for i in queue if i.area_code == "pip_E__2").reader_grades) == {"reader_a": 0, "reader_b": 4}

    area = next(a for a in areas if a.code == "pip_E__2")
    services.adjudicated_label_create(radiograph=world.r1, area=area, grade=2, lead=world.users["lead"], recompute=False)
    assert [item.area_code for item in selectors.disputed_list(project=world.alpha)] == ["mcp_J__3"]


def test_heatmap_prints_each_count_in_its_cell_and_shades_by_share_of_the_row():
    svg = heatmap_svg([[6, 2, 0], [0, 0, 0], [1, 0, 9]], title="reader_a", row_axis="consensus grade", col_axis="reader's grade")
    cells = re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"[^>]*/>(?:<text [^>]*>([^<]*)</text>)?</g>', svg)
    # Row by row; zero counts stay blank, a row without data shows dots.
    assert [t for _fill, t in cells] == ["6", "2", "", "·", "·", "·", "1", "", "9"]
    fills = dict((t, f) for f, t in cells)
    assert fills["6"] == colour_for(6 / 8) and fills["9"] == colour_for(9 / 10)
    assert colour_for(0.0) == "#f7fbff" and colour_for(1.0) == "#08306b"
    assert 'aria-label="reader_a"' in svg and "consensus grade 0, reader&#x27;s grade 1: 2 (25% of row)" in svg


def test_heatmap_of_probabilities_shows_percentages_and_greys_thin_rows():
    svg = heatmap_svg([[0.9, 0.1], [0.5, 0.5]], title="estimated", row_axis="true", col_axis="given", probabilities=True, thin_rows=[False, True])
    assert ">90</text>" in svg and ">10</text>" in svg
    assert svg.count('fill="#eceff3"') == 2  # the thin row, both cells
    assert "(too little data)" in svg


def test_export_gives_the_latest_consensus_keyed_by_patient_side_and_area(world):
    areas = areas_of(world.alpha)
    submit_grades(world.r1, world.users["reader_a"], {a.code: 1 for a in areas})
    submit_grades(world.r1, world.users["reader_b"], {a.code: 1 for a in areas} | {"pip_E__2": 3})
    services.adjudicated_label_create(
        radiograph=world.r1, area=next(a for a in areas if a.code == "pip_E__2"), grade=3, lead=world.users["lead"], recompute=False
    )
    for dimension in ("erosion", "jsn"):
        services.consensus_compute(project=world.alpha, dimension=dimension, compare_with=())
    services.consensus_compute(project=world.alpha, dimension="jsn", params={"bogus": 1})  # a later failed run is ignored

    grades = selectors.consensus_grades_for_export(world.alpha)

    assert len(grades) == 31
    assert grades[("ALPHA-PSEUDO-001", "RH", "pip_E__2")] == 3
    assert grades[("ALPHA-PSEUDO-001", "RH", "wrist_J__radcar")] == 1
    assert {side for _p, side, _a in grades} == {"RH"}


def test_export_refuses_to_mix_timepoints_unless_one_is_chosen(world):
    areas = areas_of(world.alpha)
    follow_up = make_radiograph(world.alpha, "ALPHA-PSEUDO-001")
    follow_up.visit = Visit.objects.create(patient=follow_up.visit.patient, timepoint="week52")
    follow_up.save(update_fields=["visit"])
    submit_grades(world.r1, world.users["reader_a"], {a.code: 1 for a in areas})
    submit_grades(follow_up, world.users["reader_a"], {a.code: 2 for a in areas})
    services.consensus_compute(project=world.alpha, dimension="erosion", aggregator="MajorityVote", compare_with=())

    with pytest.raises(selectors.ExportAmbiguous, match="ALPHA-PSEUDO-001"):
        selectors.consensus_grades_for_export(world.alpha)
    week52 = selectors.consensus_grades_for_export(world.alpha, timepoint="week52")
    assert set(week52.values()) == {2} and len(week52) == 16


def test_compute_consensus_command_prints_counts_and_each_readers_accuracy(three_readers, capsys):
    world, _readers, _radiographs = three_readers
    call_command("compute_consensus", "--project", "alpha", "--aggregator", "MajorityVote", "--dimension", "erosion")
    out = capsys.readouterr().out
    assert "Project alpha (Alpha Hands Study), aggregator MajorityVote" in out
    assert "erosion v1: 64 tasks, 3 readers, 192 labels, 0 gold, closed form" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip().startswith("reader_")}
    assert lines["reader_a"] == ["64", "1.00", "1.00", "1.00"]
    assert lines["reader_c"][0] == "64" and float(lines["reader_c"][1]) < 0.2 and lines["reader_c"][2] == "1.00"
    assert "jsn" not in out


def test_compute_consensus_command_names_a_missing_project_and_a_failed_run(world):
    submit_grades(world.r1, world.users["reader_a"], {a.code: 1 for a in areas_of(world.alpha)})
    with pytest.raises(CommandError, match="no project with slug or id 'gamma'"):
        call_command("compute_consensus", "--project", "gamma")
    with pytest.raises(CommandError, match="1 run"):
        call_command("compute_consensus", "--project", str(world.alpha.pk), "--dimension", "jsn", "--params", '{"no_such_parameter": 3}')


def test_export_scores_writes_the_consensus_as_an_ra2_sheet(world, capsys):
    with pytest.raises(CommandError, match="No consensus has been computed for project alpha"):
        call_command("export_scores", "--project", "alpha", "--source", "consensus", "--out", "-")
    areas = areas_of(world.alpha)
    submit_grades(world.r1, world.users["reader_a"], {a.code: 1 for a in areas} | {"pip_E__2": 4})
    submit_grades(world.r1, world.users["reader_b"], {a.code: 1 for a in areas} | {"pip_E__2": 4})
    for dimension in ("erosion", "jsn"):
        services.consensus_compute(project=world.alpha, dimension=dimension, aggregator="MajorityVote", compare_with=())

    call_command("export_scores", "--project", "alpha", "--source", "consensus", "--out", "-")

    header, row = capsys.readouterr().out.splitlines()[:2]
    sheet = dict(zip(header.split(","), row.split(",")))
    assert (sheet["Patient_ID"], sheet["RH_pip_E__2"], sheet["RH_mcp_E__1"], sheet["RH_wrist_J__radcar"]) == ("ALPHA-PSEUDO-001", "4", "1", "1")
