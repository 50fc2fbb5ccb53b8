"""Phantom radiographs: geometry, disease drawn where it is graded, determinism, grade statistics.

Measurements are taken from the image and from the bone outlines, not from the stored numbers
alone, so a generator that records one thing and draws another fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modeling.ml.phantoms import (
    BONE_AREAS,
    EROSION_LANDMARKS,
    HAND_LANDMARKS,
    JSN_LANDMARKS,
    MAX_GRADE,
    Phantom,
    PhantomConfig,
    generate_hand,
    generate_patient,
    generate_phantoms,
    load_png16,
    sample_patient_grades,
    write_phantom_set,
)

SCHEMES = Path(__file__).resolve().parents[2] / "annotation" / "data" / "schemes.json"
SMALL = PhantomConfig(width=256, height=320)
MEDIUM = PhantomConfig(width=512, height=640)


def _bilinear(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    img = image.astype(np.float64)
    x0 = np.clip(np.floor(xs).astype(int), 0, img.shape[1] - 2)
    y0 = np.clip(np.floor(ys).astype(int), 0, img.shape[0] - 2)
    fx, fy = xs - x0, ys - y0
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bottom = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _axis_profile(
    ph: Phantom, joint: str, half_length: float, offsets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean intensity along the joint axis through the landmark, over parallel lines set off
    sideways by `offsets` (fractions of the bone's half-width; default a band round the axis)."""
    j = ph.joints[joint]
    (px, py), (ax, ay) = j.point, j.axis
    half_width = ph.bones[j.proximal].head_half  # type: ignore[attr-defined]
    t = np.arange(-half_length, half_length + 1e-9, 0.25)
    fractions = np.linspace(-0.3, 0.3, 5) if offsets is None else offsets
    lines = [
        _bilinear(ph.image, px + t * ax - o * ay, py + t * ay + o * ax)
        for o in fractions * half_width
    ]
    return t, np.mean(lines, axis=0)


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------


def test_landmark_names_match_the_hand_landmarks_of_every_scheme() -> None:
    schemes = json.loads(SCHEMES.read_text())["schemes"]
    hand = {lm["name"] for s in schemes for lm in s["landmarks"] if lm["body_part"] == "hand"}
    erosion = {
        a["landmark"] for s in schemes for a in s["areas"]
        if a["body_part"] == "hand" and a["dimension"] == "erosion"
    }
    jsn = {
        a["landmark"] for s in schemes for a in s["areas"]
        if a["body_part"] == "hand" and a["dimension"] == "jsn"
    }
    assert set(HAND_LANDMARKS) == hand
    assert set(EROSION_LANDMARKS) == erosion
    assert set(JSN_LANDMARKS) == jsn


def test_a_phantom_carries_a_landmark_box_and_grade_for_every_area() -> None:
    ph = generate_hand(5, "R", config=SMALL)
    assert set(ph.landmarks) == set(HAND_LANDMARKS) == set(ph.boxes)
    assert set(ph.grades["erosion"]) == set(EROSION_LANDMARKS) == set(ph.eroded_cortex_px)
    assert set(ph.grades["jsn"]) == set(JSN_LANDMARKS) == set(ph.gap_width_px)
    for dim, grades in ph.grades.items():
        assert all(0 <= g <= MAX_GRADE[dim] for g in grades.values())
    data = json.loads(ph.to_json())
    assert data["laterality"] == "R" and data["width"] == 256 and data["height"] == 320
    assert data["landmarks"]["mcp3"] == pytest.approx(list(ph.landmarks["mcp3"]), abs=0.01)


# --------------------------------------------------------------------------------------------
# Image and geometry
# --------------------------------------------------------------------------------------------


def test_default_phantom_is_a_full_size_16_bit_film_with_bright_bone_on_dark_air() -> None:
    ph = generate_hand(3, "R")
    assert ph.image.dtype == np.uint16 and ph.image.shape == (1280, 1024)
    air = np.median(ph.image[:40, :40])
    x, y = ph.landmarks["radius"]
    bone = np.median(ph.image[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4])
    # Mid-shaft of the third proximal phalanx against the soft tissue just beside it.
    pp3 = ph.bones["pp3"]
    shaft = pp3.world(0.5 * pp3.length, 0.0)
    beside = pp3.world(0.5 * pp3.length, pp3.shaft_half + 2.0 / ph.pixel_spacing_mm)
    soft = _bilinear(ph.image, np.array([beside[0]]), np.array([beside[1]]))[0]
    phalanx = _bilinear(ph.image, np.array([shaft[0]]), np.array([shaft[1]]))[0]
    assert air < soft < phalanx
    assert air < 0.15 * 65535 and bone > 0.5 * 65535
    assert ph.pixel_spacing_mm == pytest.approx(0.2, rel=0.1)


@pytest.mark.parametrize("seed", range(6))
def test_every_landmark_lies_in_the_image_and_in_the_gap_between_its_two_bones(seed: int) -> None:
    ph = generate_hand(seed, "LR"[seed % 2], config=SMALL if seed % 3 else MEDIUM)
    for name, (x, y) in ph.landmarks.items():
        assert 0 <= x < ph.width and 0 <= y < ph.height, name
        x0, y0, x1, y1 = ph.boxes[name]
        assert x0 <= x <= x1 and y0 <= y <= y1, name
    step = 0.75  # pixels past the bone surface
    for name, j in ph.joints.items():
        p, a = np.array(j.point), np.array(j.axis)
        proximal, distal = ph.bones[j.proximal], ph.bones[j.distal]
        if j.gap_px > 2 * step:
            assert not proximal.contains(p)[0] and not distal.contains(p)[0], name
        behind = p - (0.5 * j.gap_px + step) * a
        ahead = p + (0.5 * j.gap_px + step) * a
        assert proximal.contains(behind)[0], f"{name}: no {j.proximal} just proximal to it"
        assert distal.contains(ahead)[0], f"{name}: no {j.distal} just distal to it"


def test_bone_area_landmarks_lie_inside_their_bones() -> None:
    ph = generate_hand(11, "L", config=MEDIUM)
    owners = {"nav": ["scaphoid"], "lunate": ["lunate"], "mul": ["trapezium", "trapezoid"],
              "radius": ["radius"], "ulna": ["ulna"]}
    assert set(owners) == set(BONE_AREAS)
    for name, bones in owners.items():
        assert any(ph.bones[b].contains(ph.landmarks[name])[0] for b in bones), name
    # Radius and ulna landmarks sit near the distal articular end, not down the shaft.
    for name in ("radius", "ulna"):
        bone = ph.bones[name]
        end = bone.world(bone.length, 0.0)
        assert np.hypot(*(np.array(ph.landmarks[name]) - end)) < 1.5 * bone.head_half


@pytest.mark.parametrize("seed", [2, 9])
def test_the_thumb_is_on_the_image_left_of_a_right_hand_and_the_right_of_a_left(seed: int) -> None:
    left, right = generate_patient(seed, config=SMALL)
    assert (left.laterality, right.laterality) == ("L", "R")
    assert right.landmarks["ip1"][0] < right.landmarks["mcp5"][0]
    assert right.landmarks["radius"][0] < right.landmarks["ulna"][0]
    assert left.landmarks["ip1"][0] > left.landmarks["mcp5"][0]
    assert left.landmarks["radius"][0] > left.landmarks["ulna"][0]


def test_a_left_hand_is_the_mirror_image_of_the_right_hand() -> None:
    cfg = PhantomConfig(width=256, height=320, pose_variation=0.0, noise=0.0, distractors=False)
    left = generate_hand(4, "L", grades={}, config=cfg)
    right = generate_hand(4, "R", grades={}, config=cfg)
    for name in HAND_LANDMARKS:
        (xl, yl), (xr, yr) = left.landmarks[name], right.landmarks[name]
        assert xl + xr == pytest.approx(cfg.width, abs=1.5) and yl == pytest.approx(yr, abs=0.5)
    flipped = np.fliplr(left.image).astype(float)
    # Mirroring maps x to width - x; pixel centres sit at integers, hence the one-pixel roll.
    corr = np.corrcoef(np.roll(flipped, 1, axis=1).ravel(), right.image.astype(float).ravel())[0, 1]
    assert corr > 0.97


# --------------------------------------------------------------------------------------------
# Disease drawn where it is graded
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("joint", ["mcp3", "pip2"])
def test_joint_space_narrows_monotonically_with_the_jsn_grade(joint: str) -> None:
    hands = [generate_hand(21, "R", grades={"jsn": {joint: g}}, config=MEDIUM) for g in range(5)]
    widths = [h.gap_width_px[joint] for h in hands]
    assert all(a > b for a, b in zip(widths, widths[1:])) and widths[-1] == 0.0

    # From the image: the dark dip between the two bone ends along the joint axis. The bone level
    # is read off the normal joint; the dip's area over its depth is an equivalent gap width.
    half = 3.0 * widths[0] + 6.0
    t, normal = _axis_profile(hands[0], joint, half)
    outer = np.abs(t) > 0.6 * half
    bone = np.median(normal[outer])
    floor = normal.min()
    dips = []
    for h in hands:
        _, profile = _axis_profile(h, joint, half)
        dips.append(np.trapezoid(np.clip(bone - profile, 0, None), t) / (bone - floor))
    assert all(a > b for a, b in zip(dips, dips[1:])), dips
    # The image agrees with the recorded gap to within the blur of the bone ends.
    assert dips[0] == pytest.approx(widths[0], rel=0.6)
    # Ankylosis bridges the gap, also off the axis where a convex head and a concave base would
    # leave a sliver of joint space: there the former gap is nearly as bright as bone.
    near = np.abs(t) < 3.0
    for side in (-0.5, 0.5):
        _, fused = _axis_profile(hands[4], joint, half, np.array([side]))
        _, narrow = _axis_profile(hands[3], joint, half, np.array([side]))
        assert fused[near].min() > floor + 0.6 * (bone - floor) > narrow[near].min()


def test_narrowing_one_joint_changes_nothing_else_in_the_grades_or_erosions() -> None:
    a = generate_hand(8, "L", grades={"jsn": {"pip4": 0}}, config=SMALL)
    b = generate_hand(8, "L", grades={"jsn": {"pip4": 3}}, config=SMALL)
    assert a.grades["erosion"] == b.grades["erosion"]
    assert a.eroded_cortex_px == b.eroded_cortex_px
    assert {k: v for k, v in a.gap_width_px.items() if k != "pip4"} == pytest.approx(
        {k: v for k, v in b.gap_width_px.items() if k != "pip4"}
    )


@pytest.mark.parametrize("area", ["mcp2", "pip4", "ip1", "cmc1", "lunate", "ulna", "radius"])
def test_eroded_cortex_grows_monotonically_with_the_erosion_grade(area: str) -> None:
    # The simple mode nests its lesions across grades; the realistic mode's neighbouring grades
    # overlap in appearance by design (see test_realistic_phantoms).
    simple = PhantomConfig(width=512, height=640, mode="simple")
    hands = [generate_hand(13, "R", grades={"erosion": {area: g}}, config=simple) for g in range(6)]
    removed = [h.eroded_cortex_px[area] for h in hands]
    assert removed[0] == 0
    assert all(a < b for a, b in zip(removed, removed[1:])), removed
    # The image loses brightness in the joint's box as the grade rises (same seed, same noise).
    x0, y0, x1, y1 = (int(round(c)) for c in hands[0].boxes[area])
    base = hands[0].image[y0:y1, x0:x1].astype(np.int64)
    deficit = [
        int((base - h.image[y0:y1, x0:x1].astype(np.int64)).clip(min=0).sum()) for h in hands
    ]
    assert deficit[0] == 0
    assert all(a < b for a, b in zip(deficit, deficit[1:])), deficit
    # Nothing else is eroded, and not a pixel changes outside the joint's box.
    assert all(v == 0 for k, v in hands[-1].eroded_cortex_px.items() if k != area)
    changed = hands[0].image != hands[-1].image
    changed[y0:y1, x0:x1] = False
    assert not changed.any()


def test_forced_grades_are_checked_against_the_scale() -> None:
    with pytest.raises(ValueError, match="erosion grade"):
        generate_hand(1, "R", grades={"erosion": {"mcp2": 6}}, config=SMALL)
    with pytest.raises(ValueError, match="carries no jsn"):
        generate_hand(1, "R", grades={"jsn": {"nav": 1}}, config=SMALL)
    with pytest.raises(ValueError, match="laterality"):
        generate_hand(1, "X", config=SMALL)


# --------------------------------------------------------------------------------------------
# Determinism and files
# --------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_film() -> None:
    a = generate_hand(42, "R", config=SMALL)
    b = generate_hand(42, "R", config=SMALL)
    c = generate_hand(43, "R", config=SMALL)
    assert a.image.tobytes() == b.image.tobytes() and a.to_json() == b.to_json()
    assert a.image.tobytes() != c.image.tobytes()
    assert a.landmarks != c.landmarks


def test_a_film_is_regenerated_byte_for_byte_from_its_truth_file() -> None:
    _, right = generate_patient(12, config=SMALL)
    truth = json.loads(right.to_json())
    again = generate_hand(
        truth["seed"], truth["laterality"], truth["grades"], PhantomConfig(**truth["config"]),
        hand_size=truth["hand_size"], patient_traits=truth.get("patient_traits"),
    )
    assert again.image.tobytes() == right.image.tobytes()


def test_a_phantom_set_is_written_as_16_bit_pngs_with_json_truth_and_a_contact_sheet(
    tmp_path: Path,
) -> None:
    paths = write_phantom_set(tmp_path, count=3, seed=7, config=SMALL)
    assert [p.name[-6:] for p in paths] == ["LH.png", "RH.png", "LH.png"]
    again = list(generate_phantoms(3, 7, SMALL))
    for path, (_, ph) in zip(paths, again):
        with Image.open(path) as img:
            assert img.mode.startswith("I;16") and img.size == (256, 320)
        assert np.array_equal(load_png16(path), ph.image)
        truth = json.loads(path.with_suffix(".json").read_text())
        assert truth["grades"] == ph.grades and truth["laterality"] == ph.laterality
    sheet = tmp_path / "contact_sheet.png"
    with Image.open(sheet) as img:
        assert img.width > 256 and img.mode == "RGB"


# --------------------------------------------------------------------------------------------
# Grade statistics over patients
# --------------------------------------------------------------------------------------------


def _cohort(n: int = 400) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2024)
    rows = {"E_L": [], "E_R": [], "J_L": [], "J_R": []}
    for _ in range(n):
        left, right = sample_patient_grades(rng)
        rows["E_L"].append([left["erosion"][k] for k in EROSION_LANDMARKS])
        rows["E_R"].append([right["erosion"][k] for k in EROSION_LANDMARKS])
        rows["J_L"].append([left["jsn"][k] for k in JSN_LANDMARKS])
        rows["J_R"].append([right["jsn"][k] for k in JSN_LANDMARKS])
    return {k: np.array(v) for k, v in rows.items()}


def test_most_joints_are_undamaged_and_grades_fall_off_with_severity() -> None:
    cohort = _cohort()
    for key, max_grade in (("E_L", 5), ("J_R", 4)):
        counts = np.bincount(cohort[key].ravel(), minlength=max_grade + 1)
        share = counts / counts.sum()
        assert 0.6 < share[0] < 0.9
        assert share[1] > share[2] > share[3], share
        # Grade 0 is the commonest grade at every single area.
        per_area = np.stack([np.bincount(col, minlength=max_grade + 1) for col in cohort[key].T])
        assert (per_area.argmax(axis=1) == 0).all()


def test_grades_correlate_within_a_patient_and_between_hands() -> None:
    cohort = _cohort()
    e = list(EROSION_LANDMARKS)
    mcp = cohort["E_L"][:, [e.index(f"mcp{i}") for i in range(2, 6)]].sum(axis=1)
    pip = cohort["E_L"][:, [e.index(f"pip{i}") for i in range(2, 6)]].sum(axis=1)
    assert np.corrcoef(mcp, pip)[0, 1] > 0.5
    assert np.corrcoef(cohort["E_L"].sum(axis=1), cohort["E_R"].sum(axis=1))[0, 1] > 0.7
    erosion_total = cohort["E_L"].sum(axis=1) + cohort["E_R"].sum(axis=1)
    jsn_total = cohort["J_L"].sum(axis=1) + cohort["J_R"].sum(axis=1)
    assert 0.4 < np.corrcoef(erosion_total, jsn_total)[0, 1] < 0.95


def test_mcp_and_pip_joints_are_hit_harder_than_dip_and_wrist() -> None:
    cohort = _cohort()
    e = list(EROSION_LANDMARKS)
    mean = cohort["E_L"].mean(axis=0) + cohort["E_R"].mean(axis=0)
    hands = np.mean([mean[e.index(n)] for n in e if n[:3] in ("mcp", "pip") and n != "mcp1"])
    others = np.mean([mean[e.index(n)] for n in ("dip2", "dip3", "cmc1", "mul", "lunate")])
    assert hands > 1.5 * others
