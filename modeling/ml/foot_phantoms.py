"""Synthetic dorsoplantar (PA) foot radiographs, and whole patients: two hands and two feet.

The foot counterpart of `phantoms.generate_hand`, drawn with the same bones, renderer, detector
and (in realistic mode) the same disease and film features of `realistic`. What a foot adds:

- Metatarsals 1-5, proximal phalanges, middle phalanges of toes 2-5 and distal phalanges; the
  scored joints are MTP 1-5 and the hallux IP (landmarks `mtp1`..`mtp5`, `mtp_ip`, as in the
  scheme data), each with a box round both articular ends.
- Confounders: the two sesamoids under the first metatarsal head (they overlap the MTP 1 joint and
  look like a density change at its margin), the tarsal bones overlapping the metatarsal bases,
  hallux valgus and OA-like changes at MTP 1 (hallux rigidus), clawed (foreshortened) lesser toes.
- Erosion is scored per side of the joint as Sharp/van der Heijde do for feet: the metatarsal
  head (or the proximal phalanx head at the IP) and the phalanx base each get 0-5, drawn as in the
  hand by surface share; the area's grade is their sum, 0-10. JSN is 0-4 as in the hand.
- Damage follows the patient's hands (a severity estimated from both hands, a per-foot effect,
  a shared per-joint effect so both feet look alike), with MTP 5 the most strongly weighted
  site: it is often the first eroded joint in RA.

Orientation: toes up, as seen from the tube; the hallux of a RIGHT foot lies on the image's LEFT
(like the thumb of a right hand), a left foot is the mirror image. numpy and Pillow only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from . import phantoms as ph
from . import realistic

FOOT_LANDMARKS = ("mtp_ip", "mtp1", "mtp2", "mtp3", "mtp4", "mtp5")
FOOT_MAX_GRADE = {"erosion": 10, "jsn": 4}
SIDE_MAX = 5  # erosion per side of a foot joint
GENERATOR = "modeling.ml.foot_phantoms/1"

# Erosion and JSN weights relative to MTP 2-4: MTP 5 is the earliest and most often eroded site.
FOOT_EROSION_WEIGHT = {"mtp_ip": 0.55, "mtp1": 0.8, "mtp2": 0.85, "mtp3": 0.85, "mtp4": 0.95, "mtp5": 1.3}
FOOT_JSN_WEIGHT = {"mtp_ip": 0.5, "mtp1": 0.85, "mtp2": 0.8, "mtp3": 0.8, "mtp4": 0.85, "mtp5": 1.0}
# The metatarsal head erodes more than the phalanx base facing it.
BASE_SIDE_FACTOR = 0.7

# Long-bone sizes in mm (length, base/shaft/head half-widths), canonical right foot.
METATARSALS = {
    1: (62.0, 11.0, 6.0, 9.0),
    2: (74.0, 7.0, 3.7, 5.4),
    3: (70.0, 6.5, 3.7, 5.2),
    4: (68.0, 6.0, 3.5, 5.0),
    5: (66.0, 8.5, 3.7, 4.9),
}
TOE_PROXIMAL = {1: (30.0, 8.6, 5.8, 7.4), 2: (27.0, 5.8, 3.2, 4.4), 3: (24.0, 5.6, 3.1, 4.2), 4: (22.0, 5.4, 3.0, 4.0), 5: (19.0, 5.1, 2.9, 3.8)}
TOE_MIDDLE = {2: (10.0, 4.4, 3.2, 3.9), 3: (9.0, 4.2, 3.1, 3.7), 4: (8.0, 4.0, 3.0, 3.5), 5: (6.0, 3.7, 2.8, 3.3)}
TOE_DISTAL = {1: (24.0, 7.8, 4.4, 6.4), 2: (9.0, 3.9, 2.5, 3.8), 3: (8.5, 3.7, 2.4, 3.6), 4: (8.0, 3.6, 2.3, 3.5), 5: (7.0, 3.4, 2.2, 3.3)}
# Metatarsal base centres (mm) and directions (degrees from vertical, positive lateral).
METATARSAL_BASE = {1: (-20.0, 0.0), 2: (-5.0, -4.0), 3: (5.0, -2.0), 4: (14.0, 1.0), 5: (23.0, 5.0)}
METATARSAL_ANGLE = {1: -6.0, 2: -1.0, 3: 4.0, 4: 9.0, 5: 15.0}
# Toe direction relative to its metatarsal: hallux valgus, lesser toes drift towards the second.
TOE_DRIFT = {1: 9.0, 2: 2.0, 3: -1.0, 4: -4.0, 5: -8.0}
FOOT_GAP = {"mtp1": 2.0, "mtp": 1.8, "mtp_ip": 1.4, "toe": 1.1}


def _gap_name(name: str) -> str:
    if name in FOOT_GAP:
        return name
    return "mtp" if name.startswith("mtp") else "toe"


FOOT_JOINT_NAMES = FOOT_LANDMARKS + ("_pip2", "_pip3", "_pip4", "_pip5", "_dip2", "_dip3", "_dip4", "_dip5")


def _normal_gaps() -> dict[str, float]:
    return {n: FOOT_GAP[_gap_name(n)] for n in FOOT_JOINT_NAMES}


def _toe_ray(name: str) -> int:
    return 1 if name == "mtp_ip" else int(name[-1])


# Erosion sides of each foot joint: (bone, where) for the proximal then the distal articular end.
def erosion_sides(name: str) -> tuple[tuple[str, str], tuple[str, str]]:
    if name == "mtp_ip":
        return ("pp1", "head"), ("dp1", "base")
    ray = int(name[-1])
    return (f"mt{ray}", "head"), (f"pp{ray}", "base")


# --------------------------------------------------------------------------------------------
# Grades
# --------------------------------------------------------------------------------------------


def hand_severity(hands: tuple[ph.Grades, ph.Grades]) -> float:
    """A patient severity on `sample_patient_grades`' scale, read back from both hands' grades.

    Mean erosion and JSN grades rise about linearly with the latent severity over the range that
    matters; the constants invert that relation for the hand weights and thresholds.
    """
    ero = [g for hand in hands for g in hand.get("erosion", {}).values()]
    jsn = [g for hand in hands for g in hand.get("jsn", {}).values()]
    m = 0.6 * (float(np.mean(ero)) if ero else 0.0) + 0.4 * (float(np.mean(jsn)) if jsn else 0.0)
    return 0.35 + 1.1 * m


def sample_foot_grades(
    rng: np.random.Generator, hands: tuple[ph.Grades, ph.Grades] | None = None, severity: float | None = None,
) -> tuple[ph.Grades, ph.Grades, dict[str, dict[str, tuple[int, int]]]]:
    """Grades of both feet (left, right) and each erosion area's (proximal, distal) side grades.

    Severity follows the hands; a per-patient foot effect lets some patients show feet first (as
    RA often does) and others spare them. A fixed number of values is drawn whatever the input.
    """
    draws_sev = rng.gamma(0.9, 0.95)
    foot_effect = rng.normal(0.0, 0.35)
    feet_first = rng.random() < 0.15
    feet_first_extra = rng.gamma(1.2, 0.5)
    if severity is None:
        severity = hand_severity(hands) if hands is not None else float(draws_sev)
    sev = severity * math.exp(foot_effect) + (feet_first_extra if feet_first else 0.0)
    foot_side = rng.normal(0.0, 0.2, size=2)
    names = list(FOOT_LANDMARKS)
    ew = np.array([FOOT_EROSION_WEIGHT[n] for n in names])
    jw = np.array([FOOT_JSN_WEIGHT[n] for n in names])
    shared_e = rng.normal(0.0, 0.35, size=len(names))
    shared_j = rng.normal(0.0, 0.35, size=len(names))
    out: list[ph.Grades] = []
    sides: dict[str, dict[str, tuple[int, int]]] = {}
    for f, side in enumerate("LR"):
        scale = math.exp(foot_side[f])
        own = rng.normal(0.0, 0.3, size=(3, len(names)))
        head = np.searchsorted(ph.EROSION_THRESHOLDS, sev * ew * scale + shared_e + own[0], side="right")
        base = np.searchsorted(
            ph.EROSION_THRESHOLDS, sev * ew * scale * BASE_SIDE_FACTOR + shared_e + own[1], side="right"
        )
        jsn = np.searchsorted(ph.JSN_THRESHOLDS, sev * jw * scale + shared_j + own[2], side="right")
        sides[side] = {n: (int(h), int(b)) for n, h, b in zip(names, head, base)}
        out.append({
            "erosion": {n: int(h + b) for n, h, b in zip(names, head, base)},
            "jsn": {n: int(j) for n, j in zip(names, jsn)},
        })
    return out[0], out[1], sides


def split_erosion(grade: int, u: float) -> tuple[int, int]:
    """Side grades (proximal, distal) summing to an area grade 0-10; the head takes the larger."""
    if not 0 <= grade <= 2 * SIDE_MAX:
        raise ValueError(f"foot erosion grade must be 0..10, got {grade}")
    low = max(0, grade - SIDE_MAX)
    high = min(grade, SIDE_MAX)
    base = low + int(u * (min(high, grade // 2) - low + 1))
    base = min(base, grade // 2)
    return grade - base, base


def _complete(grades: ph.Grades | None, sides: dict[str, tuple[int, int]] | None, u: np.ndarray):
    final: ph.Grades = {"erosion": {n: 0 for n in FOOT_LANDMARKS}, "jsn": {n: 0 for n in FOOT_LANDMARKS}}
    for dim, values in (grades or {}).items():
        if dim not in final:
            raise ValueError(f"unknown dimension {dim!r}; expected one of {ph.DIMENSIONS}")
        for name, g in values.items():
            if name not in final[dim]:
                raise ValueError(f"{name!r} is no foot area")
            if not 0 <= int(g) <= FOOT_MAX_GRADE[dim]:
                raise ValueError(f"{dim} grade for {name} must be 0..{FOOT_MAX_GRADE[dim]}, got {g}")
            final[dim][name] = int(g)
    split: dict[str, tuple[int, int]] = {}
    for i, name in enumerate(FOOT_LANDMARKS):
        g = final["erosion"][name]
        given = (sides or {}).get(name)
        split[name] = tuple(given) if given is not None and sum(given) == g else split_erosion(g, float(u[i]))
    return final, split


# --------------------------------------------------------------------------------------------
# Anatomy
# --------------------------------------------------------------------------------------------


def _build_foot(gaps: dict[str, float], flexion: dict[int, float], drift: dict[int, float], jitter: np.ndarray) -> ph._Layout:
    """Canonical right foot in mm: x lateral (image right), y proximal (image down)."""
    bones: dict[str, ph.Bone] = {}
    joints: dict[str, ph.Joint] = {}

    def add(b: ph.Bone) -> ph.Bone:
        along, across = jitter[len(bones) % len(jitter)]
        if isinstance(b, ph.RoundBone):
            b.semi_u *= 1.0 + 0.05 * along
            b.semi_v *= 1.0 + 0.05 * across
        elif isinstance(b, ph.LongBone):
            b.length *= 1.0 + 0.03 * along
            for attr in ("base_half", "shaft_half", "head_half", "head_radius"):
                setattr(b, attr, getattr(b, attr) * (1.0 + 0.04 * across))
        bones[b.name] = b
        return b

    # Tarsals: they overlap each other and the metatarsal bases, as on every DP film.
    for name, (x, y), su, sv, angle, kw in (
        ("talus", (-13.0, 49.0), 14.0, 12.5, -12.0, dict(power=2.2, egg=0.15)),
        ("calcaneus", (14.0, 52.0), 18.0, 13.5, 12.0, dict(power=2.4, egg=-0.1)),
        ("navicular", (-11.0, 28.5), 7.0, 15.5, 4.0, dict(power=2.6, bend=0.1, lobes=((3, 0.04, 0.6),))),
        ("cuboid", (18.5, 22.0), 12.0, 10.5, 15.0, dict(power=3.0, lobes=((3, 0.05, 1.2),))),
        ("cuneiform_m", (-19.5, 11.0), 11.5, 8.5, -6.0, dict(power=3.2, egg=0.1)),
        ("cuneiform_i", (-5.5, 6.5), 7.0, 6.0, -1.0, dict(power=3.2)),
        ("cuneiform_l", (5.0, 8.5), 9.0, 6.3, 4.0, dict(power=3.2, egg=0.1)),
    ):
        b = add(ph._round(name, su, sv, angle, **kw))
        b.origin = np.array([x, y])

    for ray in range(1, 6):
        dims = METATARSALS[ray]
        extra = dict(base_cup=0.0, base_radius=1.8 * dims[1], head_radius=1.05 * dims[3], base_flare=0.2 * dims[0])
        mt = add(ph._long(f"mt{ray}", dims, **extra))
        mt.axis = ph._dir(METATARSAL_ANGLE[ray])
        mt.origin = np.array(METATARSAL_BASE[ray])
        angle = METATARSAL_ANGLE[ray] + drift[ray]
        if ray == 1:
            chain = [("mtp1", "pp1", TOE_PROXIMAL[1]), ("mtp_ip", "dp1", TOE_DISTAL[1])]
        else:
            chain = [(f"mtp{ray}", f"pp{ray}", TOE_PROXIMAL[ray]), (f"_pip{ray}", f"mp{ray}", TOE_MIDDLE[ray]),
                     (f"_dip{ray}", f"dp{ray}", TOE_DISTAL[ray])]
        parent: ph.LongBone = mt
        for k, (jname, bname, dims) in enumerate(chain):
            # Clawed toes: the phalanges beyond the MTP stand out of the film plane and shorten.
            f = 1.0 if k == 0 and ray == 1 else flexion[ray] ** (1.6 if k else 1.0)
            length = dims[0] * f
            if bname.startswith("dp"):
                bone = ph._long(bname, (length, *dims[1:]), head_flare=0.3 * length, base_flare=0.35 * length,
                                head_radius=1.1 * dims[3], base_cup=0.6, cortex=0.35 * dims[2])
            else:
                bone = ph._long(bname, (length, *dims[1:]), head_radius=1.3 * dims[3], base_cup=1.0,
                                base_flare=min(0.3 * length, 0.9 * dims[1]), head_flare=min(0.26 * length, 0.9 * dims[3]))
            add(bone)
            bone.axis = ph._dir(angle + (0.0 if k == 0 else 0.5 * drift[ray]))
            ph._place_after(joints, jname, parent, parent.world(parent.length, 0.0), parent.axis, bone, gaps[jname])
            parent = bone

    # Sesamoids under the first metatarsal head: a confounder at the MTP 1 margins.
    mt1 = bones["mt1"]
    assert isinstance(mt1, ph.LongBone)
    for name, side in (("sesamoid_m", -0.5), ("sesamoid_l", 0.42)):
        s = add(ph._round(name, 4.6, 3.6, METATARSAL_ANGLE[1], power=2.0, cortex=0.5, density=0.95))
        s.origin = mt1.world(mt1.length - 1.4 * mt1.head_half, side * mt1.head_half)

    # Soft tissue: a capsule per toe, the forefoot polygon, the midfoot running out of the film.
    soft = []
    for ray in range(1, 6):
        first = bones[f"pp{ray}"]
        tip = bones[f"dp{ray}"]
        assert isinstance(first, ph.LongBone) and isinstance(tip, ph.LongBone)
        pad = 6.0 if ray == 1 else 5.5
        soft.append((first.world(0.0, 0.0), tip.world(tip.length - 1.5, 0.0), first.base_half + pad, tip.head_half + pad))
    mt5 = bones["mt5"]
    assert isinstance(mt5, ph.LongBone)
    forefoot = [
        mt1.world(mt1.length, -mt1.head_half - 5.5),
        bones["pp2"].world(0.25 * bones["pp2"].length, 0.0),  # type: ignore[attr-defined]
        mt5.world(mt5.length, mt5.head_half + 5.0),
        mt5.world(0.0, mt5.base_half + 6.0),
        np.array([34.0, 60.0]),
        np.array([-36.0, 60.0]),
        mt1.world(0.0, -mt1.base_half - 6.0),
    ]
    forearm = (np.array([0.0, 45.0]), np.array([0.0, 400.0]), 40.0, 34.0)
    return ph._Layout(bones=bones, joints=joints, soft=soft, palms=[forefoot], forearm=forearm)


FOOT_BONE_COUNT = 33  # rows of shape jitter (>= bones per foot)


def _layout_points(layout: ph._Layout) -> np.ndarray:
    pts = []
    for b in layout.bones.values():
        if b.name in ("talus", "calcaneus"):
            continue  # the hindfoot may run out of the film
        u0, u1, v0, v1 = b.local_bounds()
        pts += [b.world(u, v) for u in (u0 - 4.0, u1 + 5.0) for v in (v0 - 5.5, v1 + 5.5)]
    return np.array(pts)


def _foot_box(name: str, joints: dict[str, ph.Joint], bones: dict[str, ph.Bone], mm: float) -> ph.Box:
    j = joints[name]
    ends = min(ph._half_at_joint(bones[j.proximal], "distal"), ph._half_at_joint(bones[j.distal], "proximal"))
    half = 1.9 * max(ends, 3.0 * mm)
    x, y = j.point
    return (x - half, y - half, x + half, y + half)


# --------------------------------------------------------------------------------------------
# One foot
# --------------------------------------------------------------------------------------------


@dataclass
class FootPhantom(ph.Phantom):
    """A foot film: erosion 0-10 per area and each area's (proximal, distal) side grades."""

    erosion_sides: dict[str, tuple[int, int]] = field(default_factory=dict)
    body_part: str = "foot"

    def to_dict(self) -> dict:
        out = super().to_dict()
        out.update(body_part="foot", generator=GENERATOR,
                   erosion_sides={k: list(v) for k, v in self.erosion_sides.items()})
        return out


def generate_foot(
    rng_or_seed: np.random.Generator | int | None,
    laterality: str,
    grades: ph.Grades | None = None,
    config: ph.PhantomConfig | None = None,
    *,
    sides: dict[str, tuple[int, int]] | None = None,
    foot_size: float | None = None,
    patient_traits: object | None = None,
) -> FootPhantom:
    """One foot radiograph; `grades` forces the disease (areas left out are 0), as `generate_hand`.

    `sides` optionally fixes how an erosion grade splits between the two articular ends.
    """
    if laterality not in ("L", "R"):
        raise ValueError("laterality must be 'L' or 'R'")
    cfg = config or ph.PhantomConfig()
    seed = rng_or_seed if isinstance(rng_or_seed, (int, np.integer)) else None
    rng = ph._as_rng(rng_or_seed)
    streams = [np.random.default_rng(s) for s in rng.integers(0, 2**63 - 1, size=8)]
    pose_rng, grade_rng, lesion_rng, texture_rng, noise_rng, exposure_rng, marker_rng, trait_rng = streams
    pv, ev = cfg.pose_variation, cfg.exposure_variation
    realistic_mode = cfg.mode == "realistic"
    if cfg.mode not in ("simple", "realistic"):
        raise ValueError(f"unknown phantom mode {cfg.mode!r}; expected 'simple' or 'realistic'")

    drawn_l, drawn_r, drawn_sides = sample_foot_grades(grade_rng)
    drawn = drawn_l if laterality == "L" else drawn_r
    if grades is None:
        grades, sides = drawn, drawn_sides[laterality]
    final, split = _complete(grades, sides, lesion_rng.random(len(FOOT_LANDMARKS)))

    if isinstance(patient_traits, dict):
        patient_traits = realistic.PatientTraits(**patient_traits)
    traits = realistic.draw_hand_traits(trait_rng, patient_traits, final, list(_normal_gaps()))
    if not realistic_mode:
        traits.flexion = {r: 1.0 for r in traits.flexion}
    # Feet: swelling round inflamed MTPs, OA-like change at MTP 1 (hallux rigidus) as the confounder.
    swell = trait_rng.random((len(FOOT_LANDMARKS), 3))
    traits.swelling, traits.oa_joints = {}, {}
    if realistic_mode:
        for i, name in enumerate(FOOT_LANDMARKS):
            if swell[i, 0] < 0.1 + 0.06 * final["erosion"][name] + 0.2 * traits.patient.swelling:
                traits.swelling[name] = float(1.5 + 3.5 * swell[i, 1])
        if swell[0, 2] < 0.2 + traits.patient.oa:
            traits.oa_joints["mtp1"] = float(0.8 + 1.6 * swell[1, 2])

    size = foot_size if foot_size is not None else float(1.0 + pv * pose_rng.uniform(-0.08, 0.08))
    angle = math.radians(pv * pose_rng.uniform(-8.0, 8.0))
    magnification = float(1.0 + pv * pose_rng.uniform(-0.05, 0.03))
    shift = pose_rng.uniform(-1.0, 1.0, size=2) * pv
    valgus = float(pv * pose_rng.uniform(-4.0, 14.0))  # hallux valgus varies widely
    drift = {r: TOE_DRIFT[r] * (1.0 + 0.4 * pv * pose_rng.uniform(-1, 1)) for r in range(1, 6)}
    drift[1] += valgus
    jitter = pv * pose_rng.uniform(-1.0, 1.0, size=(FOOT_BONE_COUNT, 2))
    gap_jitter = {n: float(1.0 + 0.08 * pose_rng.uniform(-1.0, 1.0)) for n in FOOT_JOINT_NAMES}
    gaps = {n: g * (traits.width_factor.get(n, 1.0) if realistic_mode else gap_jitter[n]) for n, g in _normal_gaps().items()}
    flex = {r: (traits.flexion[r] if r != 1 else 1.0) for r in range(1, 6)}
    normal_layout = _build_foot(gaps, flex, drift, jitter)
    graded = dict(gaps)
    for name, g in final["jsn"].items():
        graded[name] = gaps[name] * ((1.0 - traits.jsn_loss[name]) if realistic_mode else ph.JSN_GAP_FRACTION[g])
    layout = _build_foot(graded, flex, drift, jitter)

    spacing = cfg.nominal_spacing_mm / magnification
    scale = size / spacing
    mirror = laterality == "L"
    probe = ph.Pose(scale=1.0, angle=angle, mirror=mirror, offset=(0.0, 0.0))
    pts = np.array([probe.point(p) for p in _layout_points(normal_layout)])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    margin = 0.02 * cfg.width
    fit = min((cfg.width - 2 * margin) / (hi[0] - lo[0]), (cfg.height - 2 * margin) / (hi[1] - lo[1]))
    if scale > fit:
        scale = fit
        spacing = size / scale
    slack_x = cfg.width - 2 * margin - scale * (hi[0] - lo[0])
    slack_y = cfg.height - 2 * margin - scale * (hi[1] - lo[1])
    ox = margin + 0.5 * slack_x + 0.4 * slack_x * shift[0] - scale * lo[0]
    oy = margin + 0.2 * slack_y + 0.2 * slack_y * shift[1] - scale * lo[1]
    pose = ph.Pose(scale=scale, angle=angle, mirror=mirror, offset=(float(ox), float(oy)))

    # Disease: per side of each joint, lesions as the hand's by surface share (or the simple look).
    for i, name in enumerate(FOOT_LANDMARKS):
        for s, (bone_name, where) in enumerate(erosion_sides(name)):
            g = split[name][s]
            if g <= 0:
                continue
            area_rng = np.random.default_rng([traits.lesion_seed, i, s])
            # The simple mode draws every grade at the middle of its share band: one look per grade.
            u = float(area_rng.random()) if realistic_mode else 0.5
            share = realistic.erosion_share_for(g, u)
            made = realistic.make_lesions(name, g, share, area_rng, [(bone_name, where, 1.0)], layout.bones)
            for b, les in made:
                layout.bones[b].lesions.append(les)
        if realistic_mode and final["erosion"][name] >= 9 and name in layout.joints:
            # Mutilating damage: the toe subluxes off the destroyed head (fibular deviation).
            j = layout.joints[name]
            prox = layout.bones[j.proximal]
            half = prox.head_half if isinstance(prox, ph.LongBone) else 3.0
            axis = np.array(j.axis)
            shift_v = np.array([-axis[1], axis[0]]) * 0.4 * half - axis * 0.5 * j.gap_px
            ray = _toe_ray(name)
            moved = ["dp1"] if name == "mtp_ip" else ([f"pp{ray}", f"mp{ray}", f"dp{ray}"] if ray > 1 else ["pp1", "dp1"])
            for b in moved:
                if b in layout.bones:
                    layout.bones[b].origin = layout.bones[b].origin + shift_v
            for other, oj in list(layout.joints.items()):
                if oj.proximal in moved:
                    p = np.array(oj.point) + shift_v
                    layout.joints[other] = replace(oj, point=(float(p[0]), float(p[1])))
            traits.subluxed.append(name)
    if realistic_mode:
        o = traits.patient.osteopenia
        for b in layout.bones.values():
            b.density *= 1.0 - 0.45 * o
            b.cortex *= 1.0 - 0.4 * o
    bridges = []
    for name, g in final["jsn"].items():
        if g == 4:
            j = layout.joints[name]
            prox, dist = layout.bones[j.proximal], layout.bones[j.distal]
            if isinstance(prox, ph.LongBone):
                prox.fused_distal = True
            if isinstance(dist, ph.LongBone):
                dist.fused_proximal = True
            bridges.append((name, 0.75 * min(ph._half_at_joint(prox, "distal"), ph._half_at_joint(dist, "proximal"))))

    bones = {n: b.posed(pose) for n, b in layout.bones.items()}
    joints = {}
    for n, j in layout.joints.items():
        p = pose.point(np.array(j.point))
        a = pose.vector(np.array(j.axis))
        joints[n] = replace(j, point=(float(p[0]), float(p[1])), axis=(float(a[0]), float(a[1])), gap_px=j.gap_px * scale)
    soft_px = ph._Layout(
        bones={}, joints={},
        soft=[(pose.point(a), pose.point(b), ra * scale, rb * scale) for a, b, ra, rb in layout.soft],
        palms=[[pose.point(p) for p in poly] for poly in layout.palms],
        forearm=(pose.point(layout.forearm[0]), pose.point(layout.forearm[1]),
                 layout.forearm[2] * scale, layout.forearm[3] * scale),
    )

    px_mm = 1.0 / spacing
    texture = ph.Texture(texture_rng, spacing) if cfg.trabecular_texture else None
    masks: dict[str, list[tuple[int, int, np.ndarray]]] = {}
    bone_atten, eroded = ph._render_bones(bones, cfg.width, cfg.height, texture, masks)
    if realistic_mode:
        realistic.periarticular_osteopenia(bone_atten, joints, scale, traits.patient.periarticular)
        # OA's sclerosis band scales with the bone's half-width; round the broad first metatarsal
        # head it reached into the soft tissue and air, so it is kept to the bone and a margin of
        # about 1.5 mm where osteophytes grow.
        oa = np.zeros_like(bone_atten)
        realistic.oa_changes(oa, joints, bones, traits.oa_joints, scale, ph.CORTEX_MU)
        near_bone = realistic._box_blur((bone_atten > 0).astype(np.float32), max(1, int(1.5 * scale))) > 0.05
        bone_atten += 0.4 * oa * near_bone  # milder than at a finger: a broad head piles the band up
    bone_atten *= spacing
    ph._render_bridges(bone_atten, [(joints[n], h * scale, 2.3 * ph.TRABECULAR_MU * h * size) for n, h in bridges])

    factor = 4
    sdf = ph._soft_tissue_sdf(soft_px, cfg.width, cfg.height, factor, blend=6.0 * scale)
    depth_mm = np.maximum(-sdf, 0.0) * spacing
    # Toes are round in section; the forefoot is a thick slab (feet are exposed harder than hands).
    round_r = 10.0 * size
    d = np.minimum(depth_mm, round_r)
    thickness = 2.0 * np.sqrt(d * (2.0 * round_r - d)) + 0.35 * (depth_mm - d)
    atten = bone_atten + ph._upsample(0.8 * ph.SOFT_MU * thickness, cfg.width, cfg.height)
    if realistic_mode and traits.swelling:
        # Swelling thickens the tissue that is there: without the skin mask the blob of a hallux
        # joint glowed in the air beside the foot, where the tone curve is steepest.
        inside = ph._upsample(np.clip(depth_mm / 3.0, 0.0, 1.0), cfg.width, cfg.height)
        atten += ph.SOFT_MU * inside * realistic.swelling_thickness(atten.shape, joints, traits.swelling, scale)
    distractors: dict[str, object] = {}
    if cfg.distractors and marker_rng.random() < cfg.marker_probability:
        corner = ph._free_corner(sdf, factor, marker_rng)
        if corner is not None:
            ph._marker(atten, laterality, corner, spacing, marker_rng)
            distractors["marker"] = corner

    atten = ph._blur(atten, float(1.0 - 0.5 * ev * exposure_rng.random()))
    y = ph._tone_map(atten, exposure_rng, ev)
    if realistic_mode:
        y = realistic.unsharp_mask(y, *traits.unsharp)
    heel = np.linspace(-1.0, 1.0, cfg.height, dtype=np.float32)[:, None]
    y += (0.012 * ev * exposure_rng.uniform(-1, 1)) * heel
    sigma = cfg.noise * float(0.008 + 0.01 * ev * exposure_rng.random())
    white = 65535.0 * float(1.0 - 0.15 * ev * exposure_rng.random())
    if sigma > 0:
        if realistic_mode:
            noise = realistic.grainy_noise(noise_rng, (cfg.height, cfg.width), traits.grain)
        else:
            noise = noise_rng.standard_normal((cfg.height, cfg.width), dtype=np.float32)
        y += noise * (sigma * (0.5 + y))
    image = (np.clip(y, 0.0, 1.0) * white + 0.5).astype(np.uint16)

    landmarks = {n: joints[n].point for n in FOOT_LANDMARKS}
    boxes = {}
    for n in FOOT_LANDMARKS:
        x0, y0, x1, y1 = _foot_box(n, joints, bones, px_mm)
        boxes[n] = (max(x0, 0.0), max(y0, 0.0), min(x1, cfg.width - 1.0), min(y1, cfg.height - 1.0))
    seen: dict[str, dict[str, float]] = {}
    if realistic_mode:
        by_area: dict[str, list] = {}
        for b in bones.values():
            for les in b.lesions:
                by_area.setdefault(les.landmark, []).append(les)
        seen = realistic.visibility(final, by_area, traits, float(spacing), scale, sigma,
                                    {n: _toe_ray(n) for n in FOOT_LANDMARKS})
    return FootPhantom(
        image=image, laterality=laterality, landmarks=landmarks, boxes=boxes, grades=final,
        pixel_spacing_mm=float(spacing),
        gap_width_px={n: (joints[n].gap_px if final["jsn"][n] < 4 else 0.0) for n in FOOT_LANDMARKS},
        eroded_cortex_px={n: int(eroded.get(n, 0)) for n in FOOT_LANDMARKS},
        joints={n: joints[n] for n in FOOT_LANDMARKS}, bones=bones, distractors=distractors,
        seed=int(seed) if seed is not None else None, hand_size=float(size), config=cfg,
        visibility=seen, lesion_masks=masks,
        patient_traits=asdict(traits.patient) if realistic_mode else None,
        erosion_sides=dict(split),
    )


# --------------------------------------------------------------------------------------------
# Whole patients
# --------------------------------------------------------------------------------------------

PART_CODES = (("L", "hand"), ("R", "hand"), ("L", "foot"), ("R", "foot"))


side_code = ph.side_code


def generate_whole_patient(
    seed: int, config: ph.PhantomConfig | None = None, severity: float | None = None,
) -> tuple[ph.Phantom, ph.Phantom, FootPhantom, FootPhantom]:
    """Both hands (exactly `phantoms.generate_patient`'s) and both feet of one patient.

    The feet share the hands' patient traits (osteopenia, swelling) and size, and their damage
    follows the hands' grades.
    """
    left, right = ph.generate_patient(seed, config, severity=severity)
    rng = np.random.default_rng([seed, 0xF007])
    lf, rf, sides = sample_foot_grades(rng, (left.grades, right.grades))
    lf_seed, rf_seed = (int(s) for s in rng.integers(0, 2**63 - 1, size=2))
    size = left.hand_size
    traits = left.patient_traits
    lfoot = generate_foot(lf_seed, "L", lf, config, sides=sides["L"], foot_size=size, patient_traits=traits)
    rfoot = generate_foot(rf_seed, "R", rf, config, sides=sides["R"], foot_size=size, patient_traits=traits)
    return left, right, lfoot, rfoot


def generate_patient_films(count: int, seed: int, config: ph.PhantomConfig | None = None) -> Iterator[tuple[str, ph.Phantom]]:
    """Yield (patient_id, phantom) for `count` films: LH, RH, LF, RF of successive patients."""
    return ph.generate_phantoms(count, seed, config, patient_films=generate_whole_patient)


def write_patient_set(
    out_dir: Path | str, count: int, seed: int, config: ph.PhantomConfig | None = None, contact_sheet: bool = True,
) -> list[Path]:
    """Write `count` films named `{patient}-{LH|RH|LF|RF}.png` with their JSON, and a contact sheet
    of the first 12 (three whole patients: hands and feet)."""
    return ph.write_phantom_set(out_dir, count, seed, config, contact_sheet, patient_films=generate_whole_patient)
