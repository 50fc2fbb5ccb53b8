"""The hands-and-feet benchmark end to end at a tiny size: both parts, both foot erosion heads."""
from __future__ import annotations

from modeling.ml.bench import run


def test_body_part_benchmark_reports_localisation_and_grading_for_hands_and_feet(capsys):
    result = run([
        "--body-parts", "hand,foot", "--foot-erosion-heads", "range,sides", "--rows", "consensus",
        "--patients", "6", "--test-patients", "2", "--width", "160", "--height", "200", "--threads", "1",
        "--max-epochs", "2", "--landmark-epochs", "1", "--replicates", "20", "--mode", "simple",
    ])
    for part, landmarks in (("hand", 22), ("foot", 6)):
        table = result["localisation"][part]
        assert (table["films"], table["patients"], table["landmarks"]) == (4, 2, 4 * landmarks)
        assert table["point_error_px"].value > 0 and 0 <= table["inside_box"].value <= 1
        assert len(table["error_px_by_landmark"]) == landmarks
    assert sorted(result["grading"]) == ["foot consensus (erosion head: range)", "foot consensus (erosion head: sides)", "hand consensus"]
    for row in result["grading"].values():
        assert set(row) == {"erosion", "jsn"}
        assert 0 <= row["erosion"]["balanced_accuracy"].value <= 1
    assert '"kind": "localisation"' in capsys.readouterr().out
