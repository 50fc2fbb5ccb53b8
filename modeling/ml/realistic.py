"""The realistic phantom mode: disease and film features that make grading hard to *see*.

`PhantomConfig(mode="realistic")` routes `phantoms.generate_hand` through the functions here. The
grade stays a deterministic function of the drawn lesion, as Sharp/van der Heijde define it; what
changes is how the lesion looks and what else on the film looks like it:

- Erosions are irregular cortical breaks (clusters of overlapping lobes of varying depth and
  contrast along the articular surface and its bare areas) and subchondral lucencies. An area's
  grade is the share of its articular surface involved, cut at 0.2 / 0.4 / 0.6 / 0.8; a share
  above 0.8 is collapse (grade 5): the articular ends on both sides are bitten off across the
  bone's width, leaving flattened, ragged margins and no joint outline, and the joint is subluxed. Neighbouring grades
  therefore overlap in appearance: a 0.19 and a 0.21 share look alike.
- Joint space narrowing is continuous: the lost fraction of the joint's own normal width, cut at
  0.15 / 0.40 / 0.65, with ankylosis (grade 4) bridged. Normal widths differ by joint and by
  person (about 15 per cent), so a reader who sees only the gap cannot know the grade exactly.
- Per patient: periarticular osteopenia (thinner cortex, fainter trabeculae round the joints),
  soft-tissue swelling round inflamed joints, OA-like changes (osteophytes, subchondral sclerosis)
  at DIP, PIP and the thumb base as confounders, finger flexion and out-of-plane rotation
  (foreshortened phalanges, a narrower projected joint space).
- Detector and processing: unsharp masking of varying strength and radius, noise with a grain
  (correlated over a pixel or two), on top of the base tone curves.

Every area also gets a *visibility* in [0, 1]: for an eroded area how conspicuous its lesions are
(size times contrast, less where the bone is osteopenic, the film noisy or the joint foreshortened);
for a JSN area and an undamaged area how well the joint can be judged at all. The lesion masks
(per erosion area, the pixels where bone was removed) come with the phantom. numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Share of the articular surface involved: grade g covers (EROSION_SHARE_CUTS[g-1], [g]].
EROSION_SHARE_CUTS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# Smallest share drawn at grade 1: a break of a few per cent of the surface is still an erosion.
EROSION_MIN_SHARE = 0.04
# Lost fraction of the normal joint space: grade g covers (JSN_LOSS_CUTS[g], JSN_LOSS_CUTS[g+1]].
JSN_LOSS_CUTS = (0.0, 0.15, 0.40, 0.65, 0.95)
# Individual normal joint widths (sd, as a fraction of the population normal).
NORMAL_WIDTH_SD = 0.15

FINGER_RAYS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class PatientTraits:
    """What both hands of one patient share."""

    osteopenia: float  # 0 none .. about 0.6 marked; thins cortex and fades trabeculae
    periarticular: float  # extra loss of density round the joints (RA's early sign)
    oa: float  # chance that a DIP, PIP or thumb-base joint shows OA-like changes
    swelling: float  # how inflamed the joints are on top of what the erosions imply


@dataclass
class HandTraits:
    """Random features of one film, drawn before rendering."""

    patient: PatientTraits
    flexion: dict[int, float]  # per ray: projected length factor (1 flat, 0.72 clearly flexed)
    jsn_loss: dict[str, float]  # per JSN area: lost fraction of its normal width
    width_factor: dict[str, float]  # per joint: individual normal width / population normal
    swelling: dict[str, float]  # per finger joint: extra soft-tissue thickness (mm)
    oa_joints: dict[str, float]  # joint -> osteophyte size (mm)
    unsharp: tuple[float, float]  # (strength, radius in px)
    grain: float  # noise correlation (0 white .. 1 about 1.5 px)
    lesion_seed: int
    subluxed: list[str] = field(default_factory=list)


def draw_patient_traits(rng: np.random.Generator, grades: tuple[dict, dict] | None = None) -> PatientTraits:
    """Traits of one patient; osteopenia and swelling lean on the patient's erosive damage."""
    damage = 0.0
    if grades is not None:
        values = [g for hand in grades for g in hand.get("erosion", {}).values()]
        damage = float(np.mean(values)) if values else 0.0
    osteopenia = float(np.clip(rng.gamma(1.5, 0.08) + 0.12 * damage, 0.0, 0.6))
    return PatientTraits(
        osteopenia=osteopenia,
        periarticular=float(np.clip(0.5 * osteopenia + rng.uniform(0.0, 0.2), 0.0, 0.5)),
        oa=float(rng.choice([0.0, 0.0, 0.15, 0.35, 0.6])),
        swelling=float(rng.uniform(0.0, 1.0)),
    )


def jsn_loss_for(grade: int, u: float) -> float:
    """A lost fraction inside grade `grade`'s band, from a uniform draw `u`."""
    if grade >= 4:
        return 1.0
    lo, hi = JSN_LOSS_CUTS[grade], JSN_LOSS_CUTS[grade + 1]
    return lo + (hi - lo) * u


def jsn_grade_of_loss(loss: float) -> int:
    """Inverse of the cut points: the grade a lost fraction falls in (1.0 = ankylosis)."""
    if loss >= 1.0:
        return 4
    return int(np.searchsorted(np.asarray(JSN_LOSS_CUTS[1:]), loss, side="right"))


def erosion_share_for(grade: int, u: float) -> float:
    if grade <= 0:
        return 0.0
    lo = EROSION_MIN_SHARE if grade == 1 else EROSION_SHARE_CUTS[grade - 1]
    hi = EROSION_SHARE_CUTS[grade]
    # Grade g covers (lo, hi]: u in [0, 1) maps onto it from the top.
    return hi - (hi - lo) * u


def erosion_grade_of_share(share: float) -> int:
    if share <= 0.0:
        return 0
    return min(5, int(np.searchsorted(np.asarray(EROSION_SHARE_CUTS[1:]), share, side="left")) + 1)


def draw_hand_traits(
    rng: np.random.Generator, patient: PatientTraits | None, grades: dict, joint_names: list[str]
) -> HandTraits:
    """Hand-level draws. A fixed number of values is drawn whatever the grades."""
    patient = patient or draw_patient_traits(rng)
    flex_draw = rng.random(5)
    # Most fingers lie flat; some are flexed or rolled, shortening their projection.
    flexion = {r: float(1.0 - (0.3 * flex_draw[i] ** 3 if r != 1 else 0.15 * flex_draw[i])) for i, r in enumerate(FINGER_RAYS)}
    loss_draw = rng.random(len(joint_names))
    width_draw = rng.standard_normal(len(joint_names))
    swell_draw = rng.random((len(joint_names), 2))
    oa_draw = rng.random((len(joint_names), 2))
    detector = rng.random(3)
    lesion_seed = int(rng.integers(0, 2**63 - 1))
    jsn = grades.get("jsn", {})
    ero = grades.get("erosion", {})
    jsn_loss, width, swelling, oa = {}, {}, {}, {}
    for i, name in enumerate(joint_names):
        width[name] = float(np.clip(1.0 + NORMAL_WIDTH_SD * width_draw[i], 0.65, 1.4))
        if name in jsn:
            jsn_loss[name] = jsn_loss_for(int(jsn[name]), float(loss_draw[i]))
        if name[:3] in ("mcp", "pip", "dip") or name == "ip1":
            inflamed = 0.15 + 0.15 * ero.get(name, 0) + 0.2 * patient.swelling
            if swell_draw[i, 0] < inflamed:
                swelling[name] = float(1.0 + 3.0 * swell_draw[i, 1])
        if name[:3] in ("dip", "pip") or name in ("ip1", "cmc1"):
            if oa_draw[i, 0] < patient.oa:
                oa[name] = float(0.6 + 1.2 * oa_draw[i, 1])
    return HandTraits(
        patient=patient,
        flexion=flexion,
        jsn_loss=jsn_loss,
        width_factor=width,
        swelling=swelling,
        oa_joints=oa,
        unsharp=(float(1.5 * detector[0] ** 1.5), float(2.0 + 8.0 * detector[1])),
        grain=float(detector[2]),
        lesion_seed=lesion_seed,
    )


# --------------------------------------------------------------------------------------------
# Erosions
# --------------------------------------------------------------------------------------------


def _surface_path(bone, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Points along the scored surface of a bone (local u, v) and the bone-inward direction there.

    A long bone's end: one bare area, the articular end, the other bare area. A round bone: its
    outline ("outline" all round, "facing" the distal half).
    """
    # Duck-typed: under `python -m modeling.ml.phantoms` the generator's classes live in __main__.
    if _is_long(bone):
        if where in ("head", "radius_end"):
            half = bone.head_half
            ends = np.linspace(-0.9 * half, 0.9 * half, 24)
            end_u = bone.distal_end(ends)
            side_u = np.linspace(bone.length - 1.2 * half, float(bone.distal_end(np.array([0.9 * half]))[0]) - 0.1 * half, 8)
            centre = np.array([bone.length - 1.3 * half, 0.0])
        else:
            half = bone.base_half
            ends = np.linspace(-0.9 * half, 0.9 * half, 24)
            end_u = bone.proximal_end(ends)
            side_u = np.linspace(1.2 * half, 0.1 * half, 8)
            centre = np.array([1.3 * half, 0.0])
        if where == "radius_end":
            pts = np.stack([end_u, ends], axis=1)
        else:
            w = bone.half_width(side_u)
            left = np.stack([side_u, -w], axis=1)
            right = np.stack([side_u[::-1], w[::-1]], axis=1)
            pts = np.concatenate([left, np.stack([end_u, ends], axis=1), right])
    else:
        span = 2.0 * math.pi if where == "outline" else 0.9 * math.pi
        phi = np.linspace(-span / 2, span / 2, 48)
        pts = np.stack([0.95 * bone.semi_u * np.cos(phi), 0.95 * bone.semi_v * np.sin(phi)], axis=1)
        centre = np.zeros(2)
    inward = centre[None, :] - pts
    inward /= np.maximum(np.linalg.norm(inward, axis=1, keepdims=True), 1e-6)
    return pts, inward


def _is_long(bone) -> bool:
    return hasattr(bone, "head_half")


def _reference_half(bone, where: str) -> float:
    if _is_long(bone):
        return bone.head_half if where in ("head", "radius_end") else bone.base_half
    return min(bone.semi_u, bone.semi_v)


def make_lesions(name: str, grade: int, share: float, rng: np.random.Generator, sites, bones) -> list:
    """Lesions for one erosion area as (bone name, Lesion): lobed cortical breaks and cysts.

    `share` (the graded quantity) is split over one site for small erosions and two for large
    ones; along each site's surface path a run of that length is filled with overlapping lobes.
    """
    from .phantoms import Lesion

    if grade <= 0 or share <= 0.0:
        return []
    if grade >= 5:
        return collapse_lesions(name, rng, sites, bones)
    weights = np.array([s[2] for s in sites], dtype=float)
    order = rng.permutation(len(sites)) if len(sites) > 1 else np.array([0])
    first = int(rng.choice(len(sites), p=weights / weights.sum()))
    parts = [(first, share)]
    if grade >= 3 and len(sites) > 1:
        other = int(order[0] if order[0] != first else order[-1])
        split = float(rng.uniform(0.55, 0.8))
        parts = [(first, share * split), (other, share * (1.0 - split))]
    # Contrast of this area's lesions: how much bone a break removes through the whole thickness.
    contrast = float(rng.uniform(0.3, 0.85)) if grade < 5 else float(rng.uniform(0.8, 0.95))
    out = []
    for site_index, part in parts:
        bone_name, where, _ = sites[site_index]
        bone = bones[bone_name]
        pts, inward = _surface_path(bone, where)
        seg = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
        total = seg[-1]
        half = _reference_half(bone, where)
        run = min(part, 1.0) * total
        # RA starts at the bare areas: small runs sit near either end of the path.
        if rng.random() < 0.6 and part < 0.5:
            start = float(rng.uniform(0.0, 0.12) * total) if rng.random() < 0.5 else float(total - run - rng.uniform(0.0, 0.12) * total)
        else:
            start = float(rng.uniform(0.0, max(total - run, 1e-6)))
        start = float(np.clip(start, 0.0, max(total - run, 0.0)))
        lobe_r = half * (0.09 + 0.16 * min(part, 1.0)) * (1.6 if grade == 5 else 1.0)
        n_lobes = max(1, int(math.ceil(run / (1.3 * lobe_r))))
        for k in range(n_lobes):
            s = start + (k + rng.uniform(0.2, 0.8)) * run / n_lobes
            p = np.array([np.interp(s, seg, pts[:, 0]), np.interp(s, seg, pts[:, 1])])
            d = np.array([np.interp(s, seg, inward[:, 0]), np.interp(s, seg, inward[:, 1])])
            r = lobe_r * float(rng.uniform(0.7, 1.35))
            # Centred about the cortex, so the lobe breaks the bone's outline (a marginal erosion)
            # rather than punching a hole inside it; collapse bites deeper.
            depth = r * float(rng.uniform(-0.1, 0.5) if grade == 5 else rng.uniform(-0.25, 0.35))
            c = p + depth * d
            aspect = float(rng.uniform(0.7, 1.4))
            out.append((bone_name, Lesion(
                landmark=name, u=float(c[0]), v=float(c[1]), radius_u=r * aspect, radius_v=r / aspect,
                strength=float(np.clip(contrast * rng.uniform(0.8, 1.15), 0.15, 0.97)),
            )))
        # A subchondral lucency under the break, sometimes.
        if rng.random() < 0.35:
            s = start + 0.5 * run
            p = np.array([np.interp(s, seg, pts[:, 0]), np.interp(s, seg, pts[:, 1])])
            d = np.array([np.interp(s, seg, inward[:, 0]), np.interp(s, seg, inward[:, 1])])
            r = half * float(rng.uniform(0.1, 0.22))
            c = p + (r + 0.25 * half) * d
            out.append((bone_name, Lesion(
                landmark=name, u=float(c[0]), v=float(c[1]), radius_u=r, radius_v=r * float(rng.uniform(0.7, 1.2)),
                strength=float(rng.uniform(0.2, 0.45)),
            )))
    return out


def collapse_lesions(name: str, rng: np.random.Generator, sites, bones) -> list:
    """Grade 5: the articular surfaces are destroyed, not holed.

    On each side of the joint a wide, deep bite takes the whole articular end across the bone's
    width, so the joint outline and its subchondral plate are gone; a row of smaller bites of
    varying depth along the new margin leaves it ragged and flattened, as a collapsed joint looks.
    A round bone loses most of its outline to the same kind of bites.
    """
    from .phantoms import Lesion

    out = []
    for bone_name, where, _ in sites:
        bone = bones[bone_name]
        half = _reference_half(bone, where)
        if _is_long(bone):
            if where in ("head", "radius_end"):
                end, inward = float(bone.distal_end(np.array([0.0]))[0]), -1.0
            else:
                end, inward = float(bone.proximal_end(np.array([0.0]))[0]), 1.0
            depth = half * float(rng.uniform(0.15, 0.4))
            tilt = half * float(rng.uniform(-0.3, 0.3))
            ru = half * float(rng.uniform(0.45, 0.7))
            out.append((bone_name, Lesion(
                landmark=name, u=end + inward * depth * 0.5, v=tilt, radius_u=ru, radius_v=half * float(rng.uniform(1.2, 1.5)),
                strength=float(rng.uniform(0.88, 0.97)),
            )))
            # The ragged new margin: bites reaching different depths across the width.
            for v in np.linspace(-0.85, 0.85, int(rng.integers(5, 8))):
                r = half * float(rng.uniform(0.14, 0.3))
                reach = depth * 0.5 + ru * float(rng.uniform(0.55, 1.0))
                out.append((bone_name, Lesion(
                    landmark=name, u=end + inward * reach, v=float(v * half + rng.uniform(-0.1, 0.1) * half),
                    radius_u=r * float(rng.uniform(0.8, 1.5)), radius_v=r, strength=float(rng.uniform(0.45, 0.9)),
                )))
        else:
            for _ in range(int(rng.integers(3, 5))):
                phi = float(rng.uniform(-math.pi, math.pi))
                out.append((bone_name, Lesion(
                    landmark=name, u=0.6 * bone.semi_u * math.cos(phi), v=0.6 * bone.semi_v * math.sin(phi),
                    radius_u=bone.semi_u * float(rng.uniform(0.45, 0.7)), radius_v=bone.semi_v * float(rng.uniform(0.45, 0.7)),
                    strength=float(rng.uniform(0.7, 0.92)),
                )))
    return out


# --------------------------------------------------------------------------------------------
# Pixel-space features
# --------------------------------------------------------------------------------------------


def _gauss_blob(canvas: np.ndarray, x: float, y: float, sx: float, sy: float, amp: float, angle: float = 0.0) -> None:
    h, w = canvas.shape
    rad = 3.0 * max(sx, sy)
    i0, i1 = max(int(y - rad), 0), min(int(y + rad) + 1, h)
    j0, j1 = max(int(x - rad), 0), min(int(x + rad) + 1, w)
    if i0 >= i1 or j0 >= j1:
        return
    yy = np.arange(i0, i1, dtype=np.float32)[:, None] - y
    xx = np.arange(j0, j1, dtype=np.float32)[None, :] - x
    c, s = math.cos(angle), math.sin(angle)
    a = (c * xx + s * yy) / max(sx, 1e-3)
    b = (-s * xx + c * yy) / max(sy, 1e-3)
    canvas[i0:i1, j0:j1] += (amp * np.exp(-0.5 * (a * a + b * b))).astype(np.float32)


def periarticular_osteopenia(bone_atten: np.ndarray, joints: dict, scale: float, amount: float) -> None:
    """Fade bone round every joint (multiplicative, within about 6 mm of the joint line)."""
    if amount <= 0.0:
        return
    loss = np.zeros_like(bone_atten)
    for j in joints.values():
        if j.name.startswith("_"):
            continue
        _gauss_blob(loss, j.point[0], j.point[1], 4.0 * scale, 4.0 * scale, 1.0)
    bone_atten *= 1.0 - amount * np.clip(loss, 0.0, 1.0)


def oa_changes(bone_atten: np.ndarray, joints: dict, bones: dict, oa: dict[str, float], scale: float, mu: float) -> None:
    """Osteophytes (bony lips at both margins of the joint) and a band of subchondral sclerosis."""
    for name, size in oa.items():
        if name not in joints:
            continue
        j = joints[name]
        ax = np.array(j.axis)
        perp = np.array([-ax[1], ax[0]])
        prox = bones[j.proximal]
        half = prox.head_half if _is_long(prox) else 4.0 * scale
        p = np.array(j.point)
        r = 0.5 * size * scale
        angle = math.atan2(ax[1], ax[0])
        for side in (-1.0, 1.0):
            for along in (-0.5 * j.gap_px - 0.2 * half, 0.5 * j.gap_px + 0.2 * half):
                c = p + ax * along + perp * side * (half + 0.6 * r)
                _gauss_blob(bone_atten, c[0], c[1], 0.9 * r, 0.6 * r, 2.2 * mu * r, angle)
        # Sclerosis: a denser band on each side of the joint line.
        for along in (-0.5 * j.gap_px - 0.35 * half, 0.5 * j.gap_px + 0.35 * half):
            c = p + ax * along
            _gauss_blob(bone_atten, c[0], c[1], 0.2 * half, 0.8 * half, 0.6 * mu * half, angle)


def swelling_thickness(shape: tuple[int, int], joints: dict, swelling: dict[str, float], scale: float) -> np.ndarray:
    """Extra soft-tissue thickness (mm) of fusiform swelling round inflamed finger joints."""
    extra = np.zeros(shape, dtype=np.float32)
    for name, mm in swelling.items():
        if name not in joints:
            continue
        j = joints[name]
        angle = math.atan2(j.axis[1], j.axis[0])
        _gauss_blob(extra, j.point[0], j.point[1], 5.0 * scale, 7.0 * scale, mm, angle)
    return extra


def _box_blur(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window by cumulative sums (edges replicate)."""
    if r < 1:
        return a
    p = np.pad(a, r, mode="edge").astype(np.float32)
    c = np.cumsum(p, axis=0)
    c = np.concatenate([np.zeros((1, c.shape[1]), np.float32), c])
    v = (c[2 * r + 1:] - c[: -2 * r - 1]) / (2 * r + 1)
    c = np.cumsum(v, axis=1)
    c = np.concatenate([np.zeros((c.shape[0], 1), np.float32), c], axis=1)
    return (c[:, 2 * r + 1:] - c[:, : -2 * r - 1]) / (2 * r + 1)


def unsharp_mask(y: np.ndarray, strength: float, radius_px: float) -> np.ndarray:
    """Edge enhancement as processing stations apply it: y + k (y - blur(y))."""
    if strength <= 0.0:
        return y
    r = max(1, int(round(radius_px / 2)))
    low = _box_blur(_box_blur(y, r), r)
    return y + strength * (y - low)


def grainy_noise(rng: np.random.Generator, shape: tuple[int, int], grain: float) -> np.ndarray:
    """Unit-variance noise, correlated over about a pixel when `grain` is high."""
    n = rng.standard_normal(shape, dtype=np.float32)
    if grain < 0.3:
        return n
    sm = _box_blur(n, 1)
    mix = min(1.0, (grain - 0.3) / 0.7)
    out = (1.0 - mix) * n + mix * sm * 3.0
    return out / float(np.sqrt((1.0 - mix) ** 2 + (mix * 3.0 / 3.0) ** 2))


# --------------------------------------------------------------------------------------------
# Visibility
# --------------------------------------------------------------------------------------------

# Conspicuity (mm^2 of fully removed bone) at which an erosion is seen half the time, and how
# steeply visibility rises with it (log-logistic).
CONSPICUITY_HALF_MM2 = 2.2
CONSPICUITY_POWER = 1.5


def visibility(
    grades: dict, lesions_by_area: dict[str, list], traits: HandTraits, spacing_mm: float, scale: float,
    noise_sigma: float, joint_ray: dict[str, int],
) -> dict[str, dict[str, float]]:
    """Per area and dimension, the chance in [0, 1] that a careful reader can judge it.

    An eroded area: 1 / (1 + (half / conspicuity)^power), conspicuity = sum over lesions of area
    (mm^2) x contrast, less with osteopenia and noise, times how flat the finger lies. An area without
    erosion and every JSN area: how flat the finger lies (foreshortening hides the joint) and how
    clean the film is.
    """
    film = float(np.clip(1.0 - 8.0 * max(noise_sigma - 0.008, 0.0), 0.6, 1.0))
    bone_contrast = 1.0 - 0.8 * traits.patient.osteopenia - 0.5 * traits.patient.periarticular
    out: dict[str, dict[str, float]] = {"erosion": {}, "jsn": {}}
    for dim, values in grades.items():
        for name in values:
            ray = joint_ray.get(name)
            flat = traits.flexion.get(ray, 1.0) if ray else 1.0
            judge = float(np.clip((flat - 0.55) / 0.45, 0.0, 1.0)) * film
            if dim == "erosion" and values[name] > 0:
                mm2 = 0.0
                for les in lesions_by_area.get(name, []):
                    # radii are in image pixels once posed
                    mm2 += math.pi * les.radius_u * les.radius_v * (spacing_mm ** 2) * les.strength
                consp = mm2 * bone_contrast * film * judge
                ratio = CONSPICUITY_HALF_MM2 / max(consp, 1e-9)
                out[dim][name] = float(1.0 / (1.0 + ratio**CONSPICUITY_POWER))
            else:
                out[dim][name] = float(np.clip(judge, 0.0, 1.0))
    return out
