"""Foot phantoms: MTP 1-5 and the hallux IP with landmarks and boxes, erosion 0-10 as two sides,
narrowing that closes the gap, damage that follows the hands, and whole patients on disk."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from modeling.ml import foot_phantoms as F
from modeling.ml.phantoms import PhantomConfig, sample_patient_grades

SMALL = PhantomConfig(width=320, height=400)


def test_foot_landmarks_sit_between_the_bones_of_their_joint_inside_their_boxes_and_mirror_by_side():
    right = F.generate_foot(4, "R", config=SMALL)
    left = F.generate_foot(4, "L", config=SMALL)
    assert set(right.landmarks) == set(F.FOOT_LANDMARKS)
    for name, (x, y) in right.landmarks.items():
        x0, y0, x1, y1 = right.boxes[name]
        assert x0 < x < x1 and y0 < y < y1
        joint = right.joints[name]
        # Mid-gap: in neither of the two bones the joint connects.
        assert not right.bones[joint.proximal].contains([(x, y)])[0]
        assert not right.bones[joint.distal].contains([(x, y)])[0]
    # Hallux of a right foot on the image's left, of a left foot on its right; toes point up.
    assert right.landmarks["mtp1"][0] < right.landmarks["mtp5"][0]
    assert left.landmarks["mtp1"][0] > left.landmarks["mtp5"][0]
    assert right.landmarks["mtp_ip"][1] < right.landmarks["mtp1"][1]


@pytest.mark.parametrize("grade", range(11))
def test_a_foot_erosion_grade_splits_into_two_sides_of_at_most_five(grade):
    for u in np.linspace(0.0, 0.999, 7):
        head, base = F.split_erosion(grade, float(u))
        assert head + base == grade and 0 <= base <= head <= 5


def test_more_foot_erosion_removes_more_bone_at_that_joint_only():
    removed = []
    for grade in (0, 3, 6, 10):
        foot = F.generate_foot(9, "R", {"erosion": {"mtp5": grade}}, SMALL)
        assert sum(foot.erosion_sides["mtp5"]) == grade == foot.grades["erosion"]["mtp5"]
        assert foot.eroded_cortex_px["mtp2"] == 0
        removed.append(int(foot.lesion_mask("mtp5").sum()))
    assert removed[0] == 0 and removed[1] < removed[2] < removed[3]


def test_foot_narrowing_closes_the_joint_space_and_ankylosis_leaves_none():
    gaps = [F.generate_foot(2, "L", {"jsn": {"mtp3": g}}, SMALL).gap_width_px["mtp3"] for g in range(5)]
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3] > 0.0 and gaps[4] == 0.0


def test_foot_grades_outside_the_foot_scale_are_refused():
    with pytest.raises(ValueError, match="0..10"):
        F.generate_foot(1, "R", {"erosion": {"mtp1": 11}}, SMALL)
    with pytest.raises(ValueError, match="no foot area"):
        F.generate_foot(1, "R", {"erosion": {"mcp2": 1}}, SMALL)


def test_foot_damage_follows_the_hands_and_mtp5_is_the_earliest_site():
    rng = np.random.default_rng(0)
    hand_totals, foot_totals, first = [], [], []
    mean = {n: 0.0 for n in F.FOOT_LANDMARKS}
    for _ in range(400):
        hands = sample_patient_grades(rng)
        lf, rf, sides = F.sample_foot_grades(rng, hands)
        hand_totals.append(sum(sum(h[d].values()) for h in hands for d in h))
        foot_totals.append(sum(sum(f[d].values()) for f in (lf, rf) for d in f))
        for f in (lf, rf):
            for n in F.FOOT_LANDMARKS:
                mean[n] += f["erosion"][n] / 800
            eroded = [n for n in F.FOOT_LANDMARKS if f["erosion"][n] > 0]
            if len(eroded) == 1:
                first.append(eroded[0])
        assert all(sum(sides["L"][n]) == lf["erosion"][n] for n in F.FOOT_LANDMARKS)
    assert spearmanr(hand_totals, foot_totals).statistic > 0.5
    assert max(mean, key=mean.get) == "mtp5"
    # Where a single joint of a foot is eroded, it is most often MTP 5.
    assert max(set(first), key=first.count) == "mtp5"


def test_same_seed_gives_the_same_foot_and_realistic_feet_report_visibility():
    a = F.generate_foot(21, "R", config=SMALL)
    b = F.generate_foot(21, "R", config=SMALL)
    assert np.array_equal(a.image, b.image)
    assert set(a.visibility["erosion"]) == set(F.FOOT_LANDMARKS)
    simple = F.generate_foot(21, "R", config=PhantomConfig(width=320, height=400, mode="simple"))
    assert simple.visibility == {} and not np.array_equal(simple.image, a.image)


def test_whole_patient_set_writes_both_hands_and_both_feet_with_foot_truth_and_a_contact_sheet(tmp_path):
    paths = F.write_patient_set(tmp_path, count=4, seed=3, config=SMALL)
    assert [p.stem.split("-")[1] for p in paths] == ["LH", "RH", "LF", "RF"]
    truth = json.loads(paths[3].with_suffix(".json").read_text())
    assert truth["body_part"] == "foot" and truth["laterality"] == "R"
    assert set(truth["landmarks"]) == set(F.FOOT_LANDMARKS)
    assert all(sum(truth["erosion_sides"][n]) == truth["grades"]["erosion"][n] for n in F.FOOT_LANDMARKS)
    assert json.loads(paths[0].with_suffix(".json").read_text())["body_part"] == "hand"
    assert (tmp_path / "contact_sheet.png").stat().st_size > 10_000


def test_make_phantoms_writes_whole_patients(tmp_path):
    from django.core.management import call_command

    call_command("make_phantoms", "--out", str(tmp_path), "--count", "4", "--width", "160", "--height", "200",
                 stdout=io.StringIO())
    assert sorted(p.name.split("-")[1] for p in tmp_path.glob("*.png") if p.name != "contact_sheet.png") == [
        "LF.png", "LH.png", "RF.png", "RH.png"
    ]
