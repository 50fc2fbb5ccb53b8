"""Synthetic posteroanterior hand radiographs (phantoms) with exact joint-level ground truth.

The platform has no real radiographs to ship, so the demo, the tests and every model benchmark use
these phantoms. Each phantom is a 16-bit grayscale image of one left or right hand, drawn as X-ray
attenuation (bone bright, air dark), together with the landmark of every scored joint, a box per
joint, the Sharp/van der Heijde grades that were drawn into it (erosion 0-5, joint space narrowing
0-4) and per-joint measurements (gap width, eroded cortex area) that tests can check against.

Only numpy and Pillow are needed, so this runs on a GPU machine that has no Django. A seed fixes
every random choice, so the same seed always gives the same bytes.

Orientation convention: images are displayed the usual way for a PA hand film, fingers up and the
patient in the anatomical position facing the viewer. The thumb of a RIGHT hand therefore lies on
the image's LEFT side and the ulna on the right; a left hand is the mirror image (thumb on the
image's right), as in bone-age films of the left hand.

Command line:
    python -m modeling.ml.phantoms --out DIR --count N --seed S   # PNGs, JSONs, contact sheet
    python -m modeling.ml.phantoms --bench [--count N]             # phantoms per second
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .contact_sheet import make_contact_sheet

# --------------------------------------------------------------------------------------------
# Vocabulary (must match annotation/data/schemes.json)
# --------------------------------------------------------------------------------------------

FINGER_JOINTS = (
    "ip1", "dip2", "dip3", "dip4", "dip5", "pip2", "pip3", "pip4", "pip5",
    "mcp1", "mcp2", "mcp3", "mcp4", "mcp5",
)
WRIST_JOINTS = ("cmc1", "cmc3", "cmc4", "cmc5", "mna", "capnlun", "radcar")
BONE_AREAS = ("mul", "nav", "lunate", "radius", "ulna")
HAND_LANDMARKS = FINGER_JOINTS + (
    "cmc1", "cmc3", "cmc4", "cmc5", "mul", "mna", "nav", "capnlun", "lunate", "radcar",
    "radius", "ulna",
)
EROSION_LANDMARKS = FINGER_JOINTS + ("cmc1", "mul", "nav", "lunate", "radius", "ulna")
JSN_LANDMARKS = FINGER_JOINTS + ("cmc3", "cmc4", "cmc5", "mna", "capnlun", "radcar")
MAX_GRADE = {"erosion": 5, "jsn": 4}
DIMENSIONS = ("erosion", "jsn")

# Fraction of the normal joint space left at each JSN grade. Grade 4 is ankylosis: no gap, the
# bones are bridged.
JSN_GAP_FRACTION = (1.0, 0.74, 0.48, 0.22, 0.0)

# Number of cortical defects and their radius (as a fraction of the local bone half-width) per
# erosion grade. Defects are nested across grades (grade g keeps the defects of grade g-1 and
# enlarges them), so the eroded area grows strictly with the grade for a fixed seed.
EROSION_COUNT = (0, 1, 2, 3, 4, 6)
EROSION_RADIUS = (0.0, 0.26, 0.33, 0.41, 0.50, 0.62)
LESIONS_PER_AREA = max(EROSION_COUNT)

# Recorded in every ground-truth file; bump when the same seed would draw a different film.
GENERATOR = "modeling.ml.phantoms/1"

Point = tuple[float, float]
Box = tuple[float, float, float, float]
Grades = dict[str, dict[str, int]]


# --------------------------------------------------------------------------------------------
# Configuration and result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhantomConfig:
    """Image size and how much the generator varies. Defaults give a full-size demo radiograph."""

    width: int = 1024
    height: int = 1280
    # Detector width in mm; with `width` it sets the nominal pixel spacing (0.2 mm by default).
    field_of_view_mm: float = 205.0
    # 0 gives the canonical pose (no rotation, spread or size change); 1 the full variation.
    pose_variation: float = 1.0
    # Scales detector noise; 0 gives a noise-free image.
    noise: float = 1.0
    # Exposure, gamma and blur variation; 0 gives one fixed look.
    exposure_variation: float = 1.0
    trabecular_texture: bool = True
    distractors: bool = True
    ring_probability: float = 0.15
    marker_probability: float = 0.85
    collimation_probability: float = 0.35
    # "realistic" (see modeling.ml.realistic): grades hard to see, as on films; "simple": each
    # grade one fixed, measurable look, byte-identical to the generator before the realistic mode.
    mode: str = "realistic"

    @property
    def nominal_spacing_mm(self) -> float:
        return self.field_of_view_mm / self.width


@dataclass(frozen=True)
class Joint:
    """A joint between two bones: the landmark sits mid-gap on `axis` (unit, proximal to distal)."""

    name: str
    proximal: str
    distal: str
    point: Point
    axis: Point
    gap_px: float  # joint space along the axis (canonical mm while the hand is laid out)


@dataclass
class Phantom:
    """One synthetic radiograph and everything that is known about it."""

    image: np.ndarray  # uint16, H x W
    laterality: str  # "L" or "R"
    landmarks: dict[str, Point]  # (x, y) in pixels
    boxes: dict[str, Box]  # (x0, y0, x1, y1) in pixels, axis-aligned, scaled with the hand
    grades: Grades  # {"erosion": {landmark: g}, "jsn": {landmark: g}}
    pixel_spacing_mm: float  # anatomical mm per pixel
    gap_width_px: dict[str, float]  # joint space along the joint axis, per JSN landmark
    eroded_cortex_px: dict[str, int]  # cortical pixels removed by erosions, per erosion landmark
    joints: dict[str, Joint]  # geometry of every joint landmark
    bones: dict[str, "Bone"] = field(repr=False, default_factory=dict)
    distractors: dict[str, object] = field(default_factory=dict)
    # With the grades, these regenerate the film: generate_hand(seed, laterality, grades,
    # config, hand_size=hand_size, patient_traits=patient_traits) gives the same bytes.
    seed: int | None = None
    hand_size: float = 1.0
    config: PhantomConfig | None = None
    # Per dimension and area, the chance in [0, 1] that a careful reader can judge it (realistic
    # mode; empty otherwise), and per erosion area the removed-bone pixels as
    # (row0, col0, boolean crop) pieces: see `lesion_mask`.
    visibility: dict[str, dict[str, float]] = field(default_factory=dict)
    patient_traits: dict[str, float] | None = None  # realistic mode: what both hands share
    lesion_masks: dict[str, list[tuple[int, int, np.ndarray]]] = field(repr=False, default_factory=dict)

    def lesion_mask(self, name: str) -> np.ndarray:
        """Full-size boolean mask of the pixels where erosion area `name` removed bone."""
        mask = np.zeros(self.image.shape, dtype=bool)
        for i0, j0, crop in self.lesion_masks.get(name, []):
            mask[i0 : i0 + crop.shape[0], j0 : j0 + crop.shape[1]] |= crop
        return mask

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def to_dict(self) -> dict:
        """Ground truth as plain JSON types (the image itself is stored as a PNG)."""
        return {
            "body_part": "hand",
            "view": "PA",
            "laterality": self.laterality,
            "width": self.width,
            "height": self.height,
            "pixel_spacing_mm": round(self.pixel_spacing_mm, 5),
            "generator": GENERATOR,
            "seed": self.seed,
            "hand_size": self.hand_size,
            "config": asdict(self.config) if self.config else None,
            "landmarks": {k: [round(x, 2), round(y, 2)] for k, (x, y) in self.landmarks.items()},
            "boxes": {k: [round(c, 2) for c in box] for k, box in self.boxes.items()},
            "grades": {dim: dict(g) for dim, g in self.grades.items()},
            "gap_width_px": {k: round(v, 3) for k, v in self.gap_width_px.items()},
            "eroded_cortex_px": dict(self.eroded_cortex_px),
            "joint_axes": {
                k: [round(j.axis[0], 5), round(j.axis[1], 5)] for k, j in self.joints.items()
            },
            "distractors": self.distractors,
        } | ({"visibility": self.visibility, "patient_traits": self.patient_traits} if self.visibility else {})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def save(self, png_path: Path | str) -> tuple[Path, Path]:
        """Write the 16-bit PNG and its ground-truth JSON beside it (same stem)."""
        png_path = Path(png_path)
        save_png16(self.image, png_path)
        json_path = png_path.with_suffix(".json")
        json_path.write_text(self.to_json())
        return png_path, json_path


# --------------------------------------------------------------------------------------------
# Bones: shapes in their own frame (u along the bone towards distal, v across it)
# --------------------------------------------------------------------------------------------


@dataclass
class Lesion:
    """An erosion: an elliptical bite of bone, in the bone's local frame (pixels once posed)."""

    landmark: str
    u: float
    v: float
    radius_u: float
    radius_v: float
    strength: float  # fraction of attenuation removed at the centre


def _perp(axis: np.ndarray) -> np.ndarray:
    return np.array([-axis[1], axis[0]])


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _end_falloff(d: np.ndarray, radius: np.ndarray | float) -> np.ndarray:
    """Chord of a rounded end at depth d behind its surface, relative to the full chord.

    Bones are roughly round in cross-section, so near an articular end the X-ray path through bone
    shortens like the chord of a sphere; this is what makes the ends look domed, not flat-cut.
    """
    x = np.clip(d / np.maximum(radius, 1e-3), 0.0, 1.0)
    return np.sqrt(x * (2.0 - x))


@dataclass
class Bone:
    """Common frame handling. `origin` and `axis` are in image (or canonical mm) coordinates."""

    name: str
    origin: np.ndarray
    axis: np.ndarray
    flip: float = 1.0  # -1 for a mirrored (left) hand, so anatomical sides stay right
    density: float = 1.0
    cortex: float = 1.0
    lesions: list[Lesion] = field(default_factory=list)

    # Lengths listed here are scaled when the bone is posed.
    _lengths: ClassVar[tuple[str, ...]] = ("cortex",)

    def local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Plain floats keep float32 pixel grids in float32 (numpy scalars would promote).
        ox, oy = float(self.origin[0]), float(self.origin[1])
        ax, ay = float(self.axis[0]), float(self.axis[1])
        dx = x - ox
        dy = y - oy
        u = dx * ax + dy * ay
        v = self.flip * (dy * ax - dx * ay)
        return u, v

    def world(self, u: float, v: float) -> np.ndarray:
        return self.origin + u * self.axis + (self.flip * v) * _perp(self.axis)

    def inside_value(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def contains(self, points: np.ndarray | Iterable[Point]) -> np.ndarray:
        """True where a point (x, y) lies inside the bone's outline."""
        pts = np.atleast_2d(np.asarray(points, dtype=float))
        u, v = self.local(pts[:, 0], pts[:, 1])
        return self.inside_value(u, v) < 0.0

    def local_bounds(self) -> tuple[float, float, float, float]:
        raise NotImplementedError

    def image_bounds(self) -> tuple[float, float, float, float]:
        u0, u1, v0, v1 = self.local_bounds()
        corners = np.array([self.world(u, v) for u in (u0, u1) for v in (v0, v1)])
        return (*corners.min(axis=0), *corners.max(axis=0))

    def surface_distance(self, start: np.ndarray, direction: np.ndarray, limit: float) -> float:
        """Distance from an inside point along `direction` to the outline.

        One vectorised scan at 1/40 mm, then linear interpolation of the implicit function at the
        crossing: accurate to well under a micrometre for these smooth outlines.
        """
        ts = np.linspace(0.0, limit, int(limit * 40) + 1)
        pts = start[None, :] + ts[:, None] * direction[None, :]
        u, v = self.local(pts[:, 0], pts[:, 1])
        f = self.inside_value(u, v)
        outside = np.nonzero(f >= 0.0)[0]
        if len(outside) == 0 or outside[0] == 0:
            raise ValueError(f"{self.name}: ray does not start inside or never leaves the bone")
        i = outside[0]
        f0, f1 = f[i - 1], f[i]
        return float(ts[i - 1] + (ts[i] - ts[i - 1]) * (-f0) / (f1 - f0))

    def posed(self, pose: "Pose") -> "Bone":
        """A copy in image pixels: origin and axis transformed, every length scaled."""
        scaled = {name: getattr(self, name) * pose.scale for name in self._lengths}
        lesions = [
            replace(
                les,
                u=les.u * pose.scale,
                v=les.v * pose.scale,
                radius_u=les.radius_u * pose.scale,
                radius_v=les.radius_v * pose.scale,
            )
            for les in self.lesions
        ]
        return replace(
            self,
            origin=pose.point(self.origin),
            axis=pose.vector(self.axis),
            flip=self.flip * (-1.0 if pose.mirror else 1.0),
            lesions=lesions,
            **scaled,
        )

    def render(
        self, u: np.ndarray, v: np.ndarray, texture: "Texture | None"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Attenuation (relative units) and a mask of pixels whose ray crosses only cortex."""
        raise NotImplementedError


@dataclass
class LongBone(Bone):
    """A tubular bone: phalanx, metacarpal, distal radius or ulna.

    u runs from the centre of the proximal articular surface (u = 0) to the distal one (u = length).
    """

    length: float = 10.0
    base_half: float = 2.0
    shaft_half: float = 1.5
    head_half: float = 2.0
    base_flare: float = 3.0
    head_flare: float = 3.0
    head_radius: float = 0.0  # curvature radius of the distal end; 0 means flat
    base_cup: float = 0.0  # depth of the proximal concavity of a phalanx base
    base_radius: float = 0.0  # curvature radius of a convex (rounded) base; 0 means none
    distal_cup: float = 0.0  # depth of a distal concavity (distal radius)
    tilt: float = 0.0  # slope of the distal surface (radial inclination)
    plate: float = 0.3  # subchondral plate thickness at both ends
    end_cortex: float = 0.3
    fused_proximal: bool = False
    fused_distal: bool = False
    texture_stretch: float = 2.5

    _lengths: ClassVar[tuple[str, ...]] = (
        "cortex", "length", "base_half", "shaft_half", "head_half", "base_flare", "head_flare",
        "head_radius", "base_cup", "base_radius", "distal_cup", "plate", "end_cortex",
    )

    def half_width(self, u: np.ndarray) -> np.ndarray:
        base = _smoothstep(1.0 - u / self.base_flare)
        head = _smoothstep(1.0 - (self.length - u) / self.head_flare)
        return (
            self.shaft_half
            + (self.base_half - self.shaft_half) * base
            + (self.head_half - self.shaft_half) * head
        )

    def distal_end(self, v: np.ndarray) -> np.ndarray:
        end = self.length - self.tilt * v
        if self.head_radius > 0.0:
            r = self.head_radius
            end = end - (r - np.sqrt(np.maximum(r * r - v * v, 0.0)))
        if self.distal_cup != 0.0:
            end = end - self.distal_cup * (1.0 - np.clip((v / self.head_half) ** 2, 0.0, 1.0))
        return end

    def proximal_end(self, v: np.ndarray) -> np.ndarray:
        end = -self.base_cup * np.minimum((v / self.base_half) ** 2, 1.0)
        if self.base_radius > 0.0:
            r = self.base_radius
            end = end + (r - np.sqrt(np.maximum(r * r - v * v, 0.0)))
        return end

    def inside_value(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.maximum.reduce(
            [np.abs(v) - self.half_width(u), self.proximal_end(v) - u, u - self.distal_end(v)]
        )

    def local_bounds(self) -> tuple[float, float, float, float]:
        w = max(self.base_half, self.shaft_half, self.head_half)
        return (
            -abs(self.base_cup) - 1.0,
            self.length + abs(self.tilt) * w + 1.0,
            -w - 1.0,
            w + 1.0,
        )

    def render(
        self, u: np.ndarray, v: np.ndarray, texture: "Texture | None"
    ) -> tuple[np.ndarray, np.ndarray]:
        w = self.half_width(u)
        from_base = u - self.proximal_end(v)
        to_head = self.distal_end(v) - u
        depth = np.minimum(from_base, to_head)
        # A fused (ankylosed) end does not dome off: the bone runs on into its neighbour.
        far = np.float32(1e6)
        dome = np.minimum(
            far if self.fused_proximal else from_base, far if self.fused_distal else to_head
        )
        outer = 2.0 * np.sqrt(np.maximum(w * w - v * v, 0.0)) * _end_falloff(dome, 0.6 * w)
        outer *= depth > 0.0

        # The cortex is thick along the shaft and thin over the ends; the subchondral plate is
        # the bright line that outlines every joint (absent where the joint has fused).
        shaft = 1.0 - np.maximum(
            _smoothstep(1.0 - u / self.base_flare),
            _smoothstep(1.0 - (self.length - u) / self.head_flare),
        )
        thickness = self.end_cortex + (self.cortex - self.end_cortex) * shaft
        r = np.maximum(w - thickness, 0.0)
        plate_p = 0.0 if self.fused_proximal else self.plate
        plate_d = 0.0 if self.fused_distal else self.plate
        depth_in = np.minimum(from_base - plate_p, to_head - plate_d)
        dome_in = np.minimum(
            far if self.fused_proximal else from_base - plate_p,
            far if self.fused_distal else to_head - plate_d,
        )
        inner = 2.0 * np.sqrt(np.maximum(r * r - v * v, 0.0)) * _end_falloff(dome_in, 0.6 * r)
        inner *= depth_in > 0.0

        # Trabecular bone fills the ends; the mid-shaft medullary canal holds mostly marrow.
        trabecular = inner * (1.0 - 0.6 * shaft)
        if texture is not None:
            trabecular = trabecular * texture.sample(u / self.texture_stretch, v, self)
        atten = self.density * (CORTEX_MU * (outer - inner) + TRABECULAR_MU * trabecular)
        cortex_only = (outer > 0.0) & (inner <= 0.0)
        return atten, cortex_only


@dataclass
class RoundBone(Bone):
    """A carpal bone or other rounded ossicle: a superellipse, optionally egg-shaped and bent."""

    semi_u: float = 5.0
    semi_v: float = 5.0
    power: float = 2.4
    egg: float = 0.0  # > 0 widens the distal half
    bend: float = 0.0  # curvature of the long axis (kidney shape of the scaphoid), per unit length
    # Depth of a distal concavity as a fraction of semi_u (the lunate cradling the capitate).
    dent: float = 0.0
    # Outline harmonics (k, amplitude, phase): break the superellipse into a bone-like outline.
    lobes: tuple[tuple[int, float, float], ...] = ()
    hollow: bool = False  # only a cortical ring (hook of hamate seen end-on)

    _lengths: ClassVar[tuple[str, ...]] = ("cortex", "semi_u", "semi_v")

    def _rho(self, u: np.ndarray, v: np.ndarray, shrink: float) -> np.ndarray:
        a = max(self.semi_u - shrink, 1e-3)
        b = max(self.semi_v - shrink, 1e-3)
        vv = v - self.bend * u * u / max(self.semi_u, 1e-3)
        uu = u / a
        width = b * (1.0 + self.egg * np.clip(uu, -1.0, 1.0))
        p = self.power
        rho = (np.abs(uu) ** p + np.abs(vv / width) ** p) ** (1.0 / p)
        if self.dent:
            cup = np.clip(uu, 0.0, 1.0) ** 2 * np.exp(-((vv / (0.55 * b)) ** 2))
            rho = rho + self.dent * cup
        if self.lobes:
            theta = np.arctan2(vv / width, uu)
            bulge = 1.0
            for k, amp, phase in self.lobes:
                bulge = bulge + amp * np.cos(k * theta + phase)
            rho = rho / bulge
        return rho

    def inside_value(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self._rho(u, v, 0.0) - 1.0

    def local_bounds(self) -> tuple[float, float, float, float]:
        lobes = 1.0 + sum(abs(amp) for _, amp, _ in self.lobes)
        a = self.semi_u * lobes + 1.0
        b = (self.semi_v * (1.0 + abs(self.egg)) + abs(self.bend) * self.semi_u) * lobes + 1.0
        return (-a, a, -b, b)

    def render(
        self, u: np.ndarray, v: np.ndarray, texture: "Texture | None"
    ) -> tuple[np.ndarray, np.ndarray]:
        # Carpal bones are blocky in depth, so the path length stays long until close to the
        # outline (rho**4, not an ellipsoid's rho**2); that gives the crisp cortical rim of films.
        depth = 0.9 * min(self.semi_u, self.semi_v)
        rho = self._rho(u, v, 0.0)
        r2 = rho * rho
        outer = 2.0 * depth * np.sqrt(np.clip(1.0 - r2 * r2, 0.0, 1.0))
        shrink = self.cortex
        rho_in = self._rho(u, v, shrink)
        r2 = rho_in * rho_in
        inner_depth = max(depth - shrink, 0.0)
        inner = 2.0 * inner_depth * np.sqrt(np.clip(1.0 - r2 * r2, 0.0, 1.0))
        if self.hollow:
            atten = CORTEX_MU * 1.2 * (outer - inner)
        else:
            trabecular = inner
            if texture is not None:
                trabecular = inner * texture.sample(u, v, self)
            atten = CORTEX_MU * (outer - inner) + TRABECULAR_MU * trabecular
        cortex_only = (outer > 0.0) & (inner <= 0.0)
        return self.density * atten, cortex_only


# Linear attenuation per mm (relative units; soft tissue is about a fifth of cortical bone at the
# 50-55 kVp used for hands).
CORTEX_MU = 0.13
TRABECULAR_MU = 0.036
SOFT_MU = 0.021
METAL_MU = 0.9


# --------------------------------------------------------------------------------------------
# Pose: canonical millimetres -> image pixels
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pose:
    scale: float  # pixels per canonical mm (includes hand size and magnification)
    angle: float  # radians, positive turns the fingers towards the image's right
    mirror: bool  # True for a left hand
    offset: tuple[float, float]

    def vector(self, d: np.ndarray) -> np.ndarray:
        x, y = (-d[0], d[1]) if self.mirror else (d[0], d[1])
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.array([c * x - s * y, s * x + c * y])

    def point(self, p: np.ndarray) -> np.ndarray:
        return self.vector(np.asarray(p, dtype=float)) * self.scale + np.asarray(self.offset)


# --------------------------------------------------------------------------------------------
# Anatomy: canonical right hand in mm, x to the ulnar side (image right), y proximal (image down)
# --------------------------------------------------------------------------------------------


def _dir(degrees: float) -> np.ndarray:
    """Unit vector pointing distally, `degrees` from straight up, positive to the ulnar side."""
    a = math.radians(degrees)
    return np.array([math.sin(a), -math.cos(a)])


# Long-bone sizes in mm: length, base/shaft/head half-widths.
METACARPALS = {
    1: (45.0, 7.2, 4.4, 6.4),
    2: (66.0, 5.8, 3.9, 6.2),
    3: (63.0, 6.2, 4.0, 6.4),
    4: (59.0, 4.4, 3.4, 5.6),
    5: (55.0, 4.6, 3.7, 5.6),
}
PROXIMAL_PHALANGES = {
    1: (31.0, 7.0, 4.3, 5.8),
    2: (40.0, 6.4, 4.2, 5.1),
    3: (45.0, 6.6, 4.4, 5.3),
    4: (42.0, 6.2, 4.1, 5.0),
    5: (33.0, 5.4, 3.6, 4.4),
}
MIDDLE_PHALANGES = {
    2: (23.0, 5.2, 3.5, 4.3),
    3: (27.0, 5.4, 3.7, 4.5),
    4: (26.0, 5.1, 3.5, 4.2),
    5: (19.0, 4.6, 3.1, 3.8),
}
DISTAL_PHALANGES = {
    1: (24.0, 6.2, 3.4, 4.6),
    2: (17.0, 4.6, 2.5, 3.7),
    3: (19.0, 4.8, 2.6, 3.9),
    4: (18.5, 4.6, 2.5, 3.7),
    5: (16.0, 4.1, 2.3, 3.3),
}
# Metacarpal directions (degrees from vertical, positive ulnar) and the extra angle of each finger
# at a neutral spread.
METACARPAL_ANGLE = {1: -42.0, 2: -6.0, 3: 0.0, 4: 7.0, 5: 15.0}
FINGER_SPREAD = {1: 4.0, 2: -3.5, 3: 0.0, 4: 3.0, 5: 7.0}
# Normal joint space (mm) along the joint axis.
NORMAL_GAP = {
    "ip1": 1.4, "dip": 1.1, "pip": 1.4, "mcp1": 1.7, "mcp": 2.0,
    "cmc1": 1.5, "cmc": 1.2, "mna": 1.5, "capnlun": 1.6, "radcar": 2.0, "intercarpal": 1.0,
}


def _gap_key(name: str) -> str:
    if name in NORMAL_GAP:
        return name
    for prefix in ("dip", "pip", "mcp", "cmc"):
        if name.startswith(prefix):
            return prefix
    return "intercarpal"


def _long(name: str, dims: tuple[float, float, float, float], **kw) -> LongBone:
    length, base, shaft, head = dims
    defaults = dict(
        length=length,
        base_half=base,
        shaft_half=shaft,
        head_half=head,
        base_flare=0.3 * length,
        head_flare=0.26 * length,
        head_radius=1.15 * head,
        base_cup=0.9,
        cortex=0.3 * shaft,
        end_cortex=0.09 * shaft + 0.2,
        plate=0.5,
    )
    defaults.update(kw)
    return LongBone(name=name, origin=np.zeros(2), axis=_dir(0.0), **defaults)


def _round(name: str, semi_u: float, semi_v: float, angle: float, **kw) -> RoundBone:
    defaults = dict(power=2.4, cortex=0.55)
    defaults.update(kw)
    return RoundBone(
        name=name, origin=np.zeros(2), axis=_dir(angle), semi_u=semi_u, semi_v=semi_v, **defaults
    )


@dataclass
class _Layout:
    """Bones and joints of one hand in canonical mm, before posing."""

    bones: dict[str, Bone]
    joints: dict[str, Joint]
    soft: list[tuple[np.ndarray, np.ndarray, float, float]]  # capsules: a, b, radius_a, radius_b
    palms: list[list[np.ndarray]]  # convex polygons, vertices in order (either direction)
    forearm: tuple[np.ndarray, np.ndarray, float, float]


def _place_after(
    joints: dict[str, Joint],
    name: str,
    parent: Bone,
    start: np.ndarray,
    direction: np.ndarray,
    child: Bone,
    gap: float,
) -> None:
    """Put `child` so that its surface is `gap` beyond `parent` along a ray from `start`."""
    direction = direction / np.linalg.norm(direction)
    if isinstance(parent, LongBone) and np.allclose(start, parent.world(parent.length, 0.0)):
        surface = start
    else:
        surface = start + parent.surface_distance(start, direction, 40.0) * direction
    if isinstance(child, LongBone):
        child.origin = surface + gap * direction
    else:
        # Extent of the child from its centre back along the ray (shape only, so place at 0 first).
        child.origin = np.zeros(2)
        extent = child.surface_distance(np.zeros(2), -direction, 40.0)
        child.origin = surface + (gap + extent) * direction
    point = surface + 0.5 * gap * direction
    joints[name] = Joint(
        name=name,
        proximal=parent.name,
        distal=child.name,
        point=(float(point[0]), float(point[1])),
        axis=(float(direction[0]), float(direction[1])),
        gap_px=float(gap),
    )


def _build_layout(
    gaps: dict[str, float],
    spread: float,
    finger_jitter: dict[int, float],
    shape_jitter: np.ndarray | None = None,
) -> _Layout:
    """Lay the skeleton out from the forearm to the fingertips, joint by joint.

    Each bone is placed a joint space beyond its parent along the joint axis, so narrowing a joint
    moves everything distal to it, as it does in a real hand.
    """
    bones: dict[str, Bone] = {}
    joints: dict[str, Joint] = {}

    def add(b: Bone) -> Bone:
        # Individual anatomy: each bone a few per cent longer or shorter, wider or narrower.
        if shape_jitter is not None:
            along, across = shape_jitter[len(bones)]
            if isinstance(b, RoundBone):
                b.semi_u *= 1.0 + 0.05 * along
                b.semi_v *= 1.0 + 0.05 * across
            elif isinstance(b, LongBone) and b.name not in ("radius", "ulna"):
                b.length *= 1.0 + 0.035 * along
                for name in ("base_half", "shaft_half", "head_half", "head_radius", "base_radius"):
                    setattr(b, name, getattr(b, name) * (1.0 + 0.04 * across))
        bones[b.name] = b
        return b

    # Forearm. The radius's styloid side (negative v, towards the thumb) reaches further distally:
    # radial inclination of about 22 degrees.
    radius = add(
        _long(
            "radius", (80.0, 9.0, 9.0, 15.0), base_flare=1.0, head_flare=30.0, head_radius=0.0,
            tilt=0.36, distal_cup=1.0, base_cup=0.0, cortex=2.4, end_cortex=0.5, plate=0.5,
            texture_stretch=3.0,
        )
    )
    radius.origin = np.array([-12.0, 80.0])
    ulna = add(
        _long(
            "ulna", (80.0, 6.0, 6.0, 8.0), base_flare=1.0, head_flare=16.0, head_radius=9.5,
            base_cup=0.0, cortex=2.0, end_cortex=0.45, plate=0.4, texture_stretch=3.0,
        )
    )
    ulna.origin = np.array([12.8, 84.5])
    styloid = add(_round("ulna_styloid", 5.0, 2.2, 6.0, power=2.0, egg=-0.5, cortex=0.5))
    styloid.origin = ulna.world(80.0 - 1.5, 5.6)

    # Proximal carpal row sits on the radius (radiocarpal joint).
    up = _dir(0.0)
    lunate = add(
        _round("lunate", 7.4, 8.0, 0.0, power=3.0, egg=-0.08, dent=0.22, lobes=((3, 0.04, 0.5),))
    )
    _place_after(joints, "radcar", radius, radius.world(70.0, 11.2), up, lunate, gaps["radcar"])
    scaphoid = add(
        _round(
            "scaphoid", 13.0, 6.0, -52.0, power=2.2, bend=-0.12,
            lobes=((2, -0.05, 3.14), (3, 0.04, 1.0)),
        )
    )
    _place_after(
        joints, "_radscaph", radius, radius.world(70.0, -5.0), _dir(-10.0), scaphoid,
        gaps["radcar"],
    )
    triquetrum = add(
        _round("triquetrum", 6.0, 5.4, 35.0, power=2.6, egg=0.2, lobes=((3, 0.06, 0.0),))
    )
    _place_after(
        joints, "_lunotriq", lunate, lunate.origin, np.array([1.0, -0.1]), triquetrum,
        gaps["intercarpal"],
    )
    pisiform = add(_round("pisiform", 4.3, 3.7, 20.0, power=2.0, density=0.9))
    pisiform.origin = triquetrum.origin + np.array([2.4, -1.6])

    # Distal carpal row.
    capitate = add(
        _round(
            "capitate", 11.5, 7.0, -2.0, power=2.8, egg=0.18,
            lobes=((4, 0.03, 0.4), (3, 0.03, 2.0)),
        )
    )
    _place_after(
        joints, "capnlun", lunate, lunate.origin + np.array([-2.6, 0.0]), _dir(-2.0), capitate,
        gaps["capnlun"],
    )
    hamate = add(_round("hamate", 10.5, 7.6, 12.0, power=2.6, egg=0.3, lobes=((3, 0.06, 3.1),)))
    _place_after(
        joints, "_caphamate", capitate, capitate.origin, np.array([1.0, 0.0]), hamate,
        gaps["intercarpal"] - 1.2,
    )
    hook = add(_round("hamate_hook", 3.4, 2.5, 12.0, power=2.0, hollow=True, cortex=0.6))
    hook.origin = hamate.origin + np.array([1.2, 2.0])
    trapezoid = add(
        _round("trapezoid", 6.5, 5.6, -10.0, power=3.2, egg=0.15, lobes=((3, 0.05, 1.5),))
    )
    _place_after(
        joints, "_captrapezoid", capitate, capitate.origin + np.array([0.0, -3.5]),
        np.array([-1.0, -0.05]), trapezoid, gaps["intercarpal"],
    )
    trapezium = add(
        _round(
            "trapezium", 7.0, 7.4, -35.0, power=2.8, egg=-0.1,
            lobes=((3, 0.06, 0.8), (2, 0.03, 0.0)),
        )
    )
    _place_after(
        joints, "mna", scaphoid, scaphoid.world(7.0, 1.5), _dir(-18.0), trapezium, gaps["mna"],
    )

    # Metacarpals on the distal row (carpometacarpal joints).
    mc: dict[int, LongBone] = {}
    cmc_parent = {
        1: (trapezium, trapezium.origin, "cmc1"),
        2: (trapezoid, trapezoid.origin, "_cmc2"),
        3: (capitate, capitate.origin, "cmc3"),
        4: (hamate, hamate.world(0.0, -3.8), "cmc4"),
        5: (hamate, hamate.world(0.0, 3.8), "cmc5"),
    }
    for ray in range(1, 6):
        angle = METACARPAL_ANGLE[ray]
        dims = METACARPALS[ray]
        extra = dict(
            base_cup=0.0, base_radius=1.6 * dims[1], base_flare=0.22 * dims[0],
            head_radius=1.02 * dims[3],
        )
        if ray == 1:
            extra.update(base_cup=0.8, base_radius=0.0, head_radius=1.1 * dims[3])
        bone = add(_long(f"mc{ray}", METACARPALS[ray], **extra))
        bone.axis = _dir(angle)
        parent, start, jname = cmc_parent[ray]
        _place_after(joints, jname, parent, start, bone.axis, bone, gaps[jname])
        mc[ray] = bone

    # Fingers: each phalanx continues a joint space beyond the head of the previous bone.
    for ray in range(1, 6):
        base_angle = METACARPAL_ANGLE[ray] + spread * FINGER_SPREAD[ray] + finger_jitter[ray]
        chain: list[tuple[str, str, tuple[float, float, float, float], float]]
        if ray == 1:
            chain = [
                ("mcp1", "pp1", PROXIMAL_PHALANGES[1], base_angle),
                ("ip1", "dp1", DISTAL_PHALANGES[1], base_angle + 3.0),
            ]
        else:
            # Fingers converge slightly towards the middle finger distally.
            converge = {2: 1.5, 3: 0.0, 4: -1.5, 5: -3.0}[ray]
            chain = [
                (f"mcp{ray}", f"pp{ray}", PROXIMAL_PHALANGES[ray], base_angle),
                (f"pip{ray}", f"mp{ray}", MIDDLE_PHALANGES[ray], base_angle + converge),
                (f"dip{ray}", f"dp{ray}", DISTAL_PHALANGES[ray], base_angle + 1.5 * converge),
            ]
        parent: LongBone = mc[ray]
        for jname, bname, dims, angle in chain:
            if bname.startswith("dp"):
                # Distal phalanx: narrow shaft, flared ungual tuft with a rounded tip.
                bone = _long(
                    bname, dims, head_flare=0.24 * dims[0], base_flare=0.32 * dims[0],
                    head_radius=1.05 * dims[3], base_cup=0.7, cortex=0.35 * dims[2],
                )
            else:
                bone = _long(bname, dims, head_radius=1.35 * dims[3], base_cup=1.0)
            add(bone)
            bone.axis = _dir(angle)
            _place_after(
                joints, jname, parent, parent.world(parent.length, 0.0), parent.axis, bone,
                gaps[jname],
            )
            parent = bone

    # Sesamoid bones over the head of the first metacarpal.
    for side, name in ((-0.55, "sesamoid_r"), (0.5, "sesamoid_u")):
        s = add(_round(name, 2.4, 2.0, METACARPAL_ANGLE[1], power=2.0, cortex=0.4, density=0.9))
        s.origin = mc[1].world(mc[1].length - 0.35 * mc[1].head_half, side * mc[1].head_half)

    # Soft-tissue envelope: a tapered capsule per finger segment, a palm polygon and the forearm.
    soft: list[tuple[np.ndarray, np.ndarray, float, float]] = []
    for ray in range(1, 6):
        segs = ["mc1", "pp1", "dp1"] if ray == 1 else [f"pp{ray}", f"mp{ray}", f"dp{ray}"]
        for i, name in enumerate(segs):
            b = bones[name]
            assert isinstance(b, LongBone)
            a = b.world(0.0, 0.0)
            tip = b.world(b.length - (2.0 if name.startswith("dp") else 0.0), 0.0)
            if name == "mc1":
                ra, rb = 13.5, 10.5
                a = b.world(0.15 * b.length, -2.0)
            else:
                ra = b.base_half + (4.4 if i == 0 else 3.9)
                rb = b.head_half + (3.6 if name.startswith("dp") else 4.0)
            soft.append((a, tip, ra, rb))
    # The palm reaches the finger webs (about a third up the proximal phalanges); the thenar
    # polygon fills the first web between thumb and index. Both must be convex.
    web = {r: bones[f"pp{r}"].world(0.3 * bones[f"pp{r}"].length, 0.0) for r in range(2, 6)}
    palm = [
        web[3] + np.array([0.0, -1.0]),
        web[2] + 4.0 * _perp(bones["pp2"].axis) * -1.0,
        mc[2].world(0.55 * mc[2].length, -9.0),
        radius.world(55.0, -21.0),
        ulna.world(55.0, 13.0),
        mc[5].world(0.35 * mc[5].length, 11.0),
        mc[5].world(mc[5].length, 8.5),
        web[5] + 4.0 * _perp(bones["pp5"].axis),
        web[4],
    ]
    thenar = [
        mc[2].world(0.7 * mc[2].length, -3.0),
        mc[1].world(0.92 * mc[1].length, 7.0),
        mc[1].world(0.5 * mc[1].length, -11.0),
        radius.world(60.0, -20.0),
        capitate.origin,
    ]
    forearm = (np.array([-4.0, 45.0]), np.array([-6.0, 400.0]), 32.0, 38.0)
    return _Layout(bones=bones, joints=joints, soft=soft, palms=[palm, thenar], forearm=forearm)


# --------------------------------------------------------------------------------------------
# Disease: grades per patient, and where they are drawn
# --------------------------------------------------------------------------------------------

# How strongly each area is affected relative to the MCPs (RA targets MCPs and PIPs first).
EROSION_WEIGHT = {
    "ip1": 0.55, "dip2": 0.35, "dip3": 0.35, "dip4": 0.35, "dip5": 0.35,
    "pip2": 0.85, "pip3": 0.9, "pip4": 0.8, "pip5": 0.8,
    "mcp1": 0.6, "mcp2": 1.0, "mcp3": 1.0, "mcp4": 0.85, "mcp5": 0.95,
    "cmc1": 0.45, "mul": 0.5, "nav": 0.6, "lunate": 0.5, "radius": 0.5, "ulna": 0.7,
}
JSN_WEIGHT = {
    "ip1": 0.5, "dip2": 0.45, "dip3": 0.45, "dip4": 0.45, "dip5": 0.45,
    "pip2": 0.85, "pip3": 0.9, "pip4": 0.85, "pip5": 0.8,
    "mcp1": 0.55, "mcp2": 1.0, "mcp3": 0.95, "mcp4": 0.85, "mcp5": 0.85,
    "cmc3": 0.5, "cmc4": 0.5, "cmc5": 0.55, "mna": 0.6, "capnlun": 0.7, "radcar": 0.6,
}
# Latent thresholds between consecutive grades.
EROSION_THRESHOLDS = np.array([1.0, 1.55, 2.05, 2.6, 3.3])
JSN_THRESHOLDS = np.array([0.95, 1.5, 2.1, 2.9])


def _as_rng(rng_or_seed: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


def sample_patient_grades(
    rng_or_seed: np.random.Generator | int | None, severity: float | None = None
) -> tuple[Grades, Grades]:
    """Grades for both hands of one patient: (left, right).

    A patient-level severity drives every joint, so grades correlate within a patient; a shared
    per-joint effect makes the two hands alike (RA is symmetric); most joints stay at 0.
    """
    rng = _as_rng(rng_or_seed)
    if severity is None:
        # Many patients have little or no damage, a few have a lot.
        severity = float(rng.gamma(0.9, 0.95))
    hand_effect = rng.normal(0.0, 0.2, size=2)
    # Erosive and narrowing disease go together but not in lockstep.
    dimension_effect = rng.normal(0.0, 0.35, size=2)
    result: list[Grades] = [{"erosion": {}, "jsn": {}}, {"erosion": {}, "jsn": {}}]
    for d, (dim, weights, thresholds) in enumerate(
        (("erosion", EROSION_WEIGHT, EROSION_THRESHOLDS), ("jsn", JSN_WEIGHT, JSN_THRESHOLDS))
    ):
        names = list(weights)
        w = np.array([weights[n] for n in names])
        shared = rng.normal(0.0, 0.35, size=len(names))
        for hand in range(2):
            own = rng.normal(0.0, 0.3, size=len(names))
            scale = math.exp(hand_effect[hand] + dimension_effect[d])
            latent = severity * w * scale + shared + own
            grades = np.searchsorted(thresholds, latent, side="right")
            result[hand][dim] = {n: int(g) for n, g in zip(names, grades)}
    return result[0], result[1]


def _complete_grades(grades: Grades | None) -> Grades:
    """Forced grades: areas not given are 0. Values are checked against the scale."""
    out: Grades = {
        "erosion": {n: 0 for n in EROSION_LANDMARKS},
        "jsn": {n: 0 for n in JSN_LANDMARKS},
    }
    for dim, values in (grades or {}).items():
        if dim not in out:
            raise ValueError(f"unknown dimension {dim!r}; expected one of {DIMENSIONS}")
        for name, g in values.items():
            if name not in out[dim]:
                raise ValueError(f"{name!r} carries no {dim} grade")
            if not 0 <= int(g) <= MAX_GRADE[dim]:
                raise ValueError(f"{dim} grade for {name} must be 0..{MAX_GRADE[dim]}, got {g}")
            out[dim][name] = int(g)
    return out


# Bones that carry each erosion area, with the share of defects drawn on each and where on the
# bone: "head" = distal end of a long bone, "base" = proximal end, "outline" = anywhere round a
# carpal bone, "facing" = the distal half of a carpal bone (towards the joint it shares),
# "radius_end" = distal articular region of the radius.
def _erosion_sites(name: str) -> list[tuple[str, str, float]]:
    if name in FINGER_JOINTS:
        ray = int(name[-1])
        kind = name[:-1]
        if name == "ip1":
            return [("pp1", "head", 0.6), ("dp1", "base", 0.4)]
        if kind == "mcp":
            return [(f"mc{ray}", "head", 0.7), (f"pp{ray}", "base", 0.3)]
        if kind == "pip":
            return [(f"pp{ray}", "head", 0.6), (f"mp{ray}", "base", 0.4)]
        return [(f"mp{ray}", "head", 0.6), (f"dp{ray}", "base", 0.4)]
    return {
        "cmc1": [("mc1", "base", 0.75), ("trapezium", "facing", 0.25)],
        "mul": [("trapezium", "outline", 0.6), ("trapezoid", "outline", 0.4)],
        "nav": [("scaphoid", "outline", 1.0)],
        "lunate": [("lunate", "outline", 1.0)],
        "radius": [("radius", "radius_end", 1.0)],
        "ulna": [("ulna", "head", 0.6), ("ulna_styloid", "outline", 0.4)],
    }[name]


@dataclass(frozen=True)
class _LesionDraw:
    """Random numbers for one potential defect, drawn whatever the grade (keeps grades nested)."""

    site: float
    side: float
    along: float
    size: float
    aspect: float
    angle: float
    cyst: float


def _draw_lesions(rng: np.random.Generator) -> dict[str, list[_LesionDraw]]:
    draws: dict[str, list[_LesionDraw]] = {}
    for name in EROSION_LANDMARKS:
        r = rng.random((LESIONS_PER_AREA, 7))
        draws[name] = [_LesionDraw(*row) for row in r]
    return draws


def _make_lesions(
    name: str, grade: int, draws: list[_LesionDraw], bones: dict[str, Bone]
) -> list[tuple[str, Lesion]]:
    if grade <= 0:
        return []
    sites = _erosion_sites(name)
    cumulative = np.cumsum([s[2] for s in sites])
    out: list[tuple[str, Lesion]] = []
    for k in range(EROSION_COUNT[grade]):
        d = draws[k]
        bone_name, where, _ = sites[int(np.searchsorted(cumulative, d.site * cumulative[-1]))]
        bone = bones[bone_name]
        radius_frac = EROSION_RADIUS[grade] * (0.8 + 0.4 * d.size)
        # Cysts (subchondral lucencies) appear from grade 2; they sit inside the bone end.
        cyst = grade >= 2 and d.cyst < 0.25
        if isinstance(bone, LongBone):
            side = -1.0 if d.side < 0.5 else 1.0
            if where == "radius_end":
                # Styloid tip, ulnar corner or the articular rim.
                half = bone.head_half
                v = (2.0 * d.side - 1.0) * 0.95 * half
                u_end = float(bone.distal_end(np.array([v]))[0])
                u = u_end - (0.05 + 0.5 * d.along) * half
            else:
                half = bone.head_half if where == "head" else bone.base_half
                # Bare area: the margin just beside the articular surface, where RA erodes first.
                if where == "head":
                    u_end = bone.length - 0.3 * half
                    u = u_end - (0.1 + 0.6 * d.along) * half
                else:
                    u = (0.1 + 0.6 * d.along) * half
                w = float(bone.half_width(np.array([u]))[0])
                v = side * w * (0.55 if cyst else 0.92)
                if cyst:
                    u = u - 0.2 * half if where == "head" else u + 0.2 * half
            ref = half
        else:
            assert isinstance(bone, RoundBone)
            spread = 2.0 * math.pi if where == "outline" else 0.6 * math.pi
            phi = spread * (d.angle - 0.5)
            scale = 0.55 if cyst else 0.93
            u = scale * bone.semi_u * math.cos(phi)
            v = scale * bone.semi_v * math.sin(phi)
            ref = min(bone.semi_u, bone.semi_v)
        radius = radius_frac * ref
        aspect = 0.7 + 0.6 * d.aspect
        out.append(
            (
                bone_name,
                Lesion(
                    landmark=name,
                    u=u,
                    v=v,
                    radius_u=radius * aspect,
                    radius_v=radius / aspect,
                    strength=0.55 if cyst else 0.82,
                ),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Rendering helpers
# --------------------------------------------------------------------------------------------


class Texture:
    """Trabecular pattern: a band-passed noise tile sampled in each bone's own frame."""

    size = 256

    def __init__(self, rng: np.random.Generator, spacing_mm: float, strength: float = 1.0):
        n = self.size
        white = rng.standard_normal((n, n))
        fy = np.fft.fftfreq(n)[:, None]
        fx = np.fft.fftfreq(n)[None, :]
        f = np.sqrt(fx * fx + fy * fy)
        band = np.exp(-(((f - 0.16) / 0.07) ** 2))
        tile = np.real(np.fft.ifft2(np.fft.fft2(white) * band))
        tile /= tile.std() + 1e-9
        # Finer than a pixel the pattern only aliases into noise, so fade it on coarse images.
        fade = float(np.clip(1.5 - 2.5 * spacing_mm, 0.15, 1.0))
        self.tile = (1.0 + 0.22 * strength * fade * np.clip(tile, -2.5, 2.5)).astype(np.float32)
        # Texture cells per pixel: one cell is 0.14 mm of bone, so the pattern repeats about
        # every 0.9 mm, the spacing of trabeculae.
        self.cells_per_px = spacing_mm / 0.14
        self.offsets = rng.integers(0, n, size=(64, 2))

    def sample(self, u: np.ndarray, v: np.ndarray, bone: Bone) -> np.ndarray:
        # A fixed offset per bone so neighbouring bones do not share the same pattern.
        k = sum(map(ord, bone.name)) % 64
        iu = (u * self.cells_per_px).astype(np.int32) + self.offsets[k, 0]
        iv = (v * self.cells_per_px).astype(np.int32) + self.offsets[k, 1]
        return self.tile[iu & (self.size - 1), iv & (self.size - 1)]


def _grid(bounds: tuple[float, float, float, float], width: int, height: int):
    x0, y0, x1, y1 = bounds
    i0, i1 = max(int(math.floor(y0)), 0), min(int(math.ceil(y1)) + 1, height)
    j0, j1 = max(int(math.floor(x0)), 0), min(int(math.ceil(x1)) + 1, width)
    if i0 >= i1 or j0 >= j1:
        return None
    ys = np.arange(i0, i1, dtype=np.float32)[:, None]
    xs = np.arange(j0, j1, dtype=np.float32)[None, :]
    return (slice(i0, i1), slice(j0, j1)), xs, ys


def _lesion_mask(les: Lesion, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    du = (u - les.u) / max(les.radius_u, 1e-3)
    dv = (v - les.v) / max(les.radius_v, 1e-3)
    r = np.sqrt(du * du + dv * dv)
    # Full depth in the middle, fading over the outer third: an erosion's margin is ragged and
    # part of the bone in front of and behind it remains, so it is no clean punched hole.
    return _smoothstep((1.0 - r) / 0.35)


def _render_bones(
    bones: dict[str, Bone], width: int, height: int, texture: Texture | None,
    masks: dict[str, list[tuple[int, int, np.ndarray]]] | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    canvas = np.zeros((height, width), dtype=np.float32)
    eroded: dict[str, int] = {}
    for bone in bones.values():
        g = _grid(bone.image_bounds(), width, height)
        if g is None:
            continue
        window, xs, ys = g
        u, v = bone.local(xs, ys)
        atten, cortex_only = bone.render(u, v, texture)
        if bone.lesions:
            keep = np.ones_like(atten)
            per_landmark: dict[str, np.ndarray] = {}
            for les in bone.lesions:
                m = _lesion_mask(les, u, v)
                keep *= 1.0 - les.strength * m
                hit = m > 0.5
                per_landmark[les.landmark] = per_landmark.get(les.landmark, False) | hit
            atten = atten * keep
            for name, hit in per_landmark.items():
                eroded[name] = eroded.get(name, 0) + int(np.count_nonzero(hit & cortex_only))
                if masks is not None:
                    masks.setdefault(name, []).append((window[0].start, window[1].start, hit))
        canvas[window] += atten.astype(np.float32)
    return canvas, eroded


def _render_bridges(canvas: np.ndarray, bridges: list[tuple[Joint, float, float]]) -> None:
    """Ankylosis: bone bridges the former joint space (max-composited so ends are not doubled)."""
    height, width = canvas.shape
    for joint, half_width, level in bridges:
        axis = np.array(joint.axis)
        bridge = RoundBone(
            name="bridge", origin=np.array(joint.point), axis=axis, semi_u=0.5 * half_width,
            semi_v=half_width, power=3.0, cortex=0.0,
        )
        g = _grid(bridge.image_bounds(), width, height)
        if g is None:
            continue
        window, xs, ys = g
        u, v = bridge.local(xs, ys)
        rho = bridge._rho(u, v, 0.0)
        fill = level * np.sqrt(np.clip(1.0 - rho * rho, 0.0, 1.0))
        canvas[window] = np.maximum(canvas[window], fill.astype(np.float32))


def _capsule_sdf(px, py, a, b, ra, rb):
    abx, aby = b[0] - a[0], b[1] - a[1]
    apx, apy = px - a[0], py - a[1]
    t = np.clip((apx * abx + apy * aby) / (abx * abx + aby * aby + 1e-9), 0.0, 1.0)
    dx, dy = apx - t * abx, apy - t * aby
    return np.sqrt(dx * dx + dy * dy) - (ra + (rb - ra) * t)


def _convex_polygon_sdf(px, py, poly: list[np.ndarray]) -> np.ndarray:
    """Largest signed distance to the edge lines: exact inside, slightly short outside corners."""
    pts = np.array(poly, dtype=float)
    centre = pts.mean(axis=0)
    out = None
    for i in range(len(pts)):
        p0, p1 = pts[i], pts[(i + 1) % len(pts)]
        ex, ey = p1[0] - p0[0], p1[1] - p0[1]
        n = math.hypot(ex, ey)
        nx, ny = -ey / n, ex / n
        # Normals point away from the centre, whichever way the vertices run.
        if (centre[0] - p0[0]) * nx + (centre[1] - p0[1]) * ny > 0:
            nx, ny = -nx, -ny
        d = (px - float(p0[0])) * nx + (py - float(p0[1])) * ny
        out = d if out is None else np.maximum(out, d)
    return out


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _soft_tissue_sdf(layout_px: _Layout, width: int, height: int, factor: int, blend: float):
    """Signed distance (pixels, negative inside) to the skin, computed on a coarse grid."""
    gw, gh = -(-width // factor), -(-height // factor)
    px = ((np.arange(gw, dtype=np.float32) + 0.5) * factor - 0.5)[None, :]
    py = ((np.arange(gh, dtype=np.float32) + 0.5) * factor - 0.5)[:, None]
    a, b, ra, rb = layout_px.forearm
    sdf = _capsule_sdf(px, py, a, b, ra, rb)
    for poly in layout_px.palms:
        sdf = _smooth_min(sdf, _convex_polygon_sdf(px, py, poly), blend)
    for a, b, ra, rb in layout_px.soft:
        sdf = _smooth_min(sdf, _capsule_sdf(px, py, a, b, ra, rb), blend)
    return sdf.astype(np.float32)


def _upsample(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32), mode="F")
    return np.asarray(img.resize((width, height), Image.BILINEAR), dtype=np.float32)


def _blur(a: np.ndarray, amount: float) -> np.ndarray:
    """Detector unsharpness: blend towards a separable [1, 2, 1] / 4 blur (sigma 0.7 px at 1).

    Written as a handful of whole-array operations, as this runs on every full-size pixel.
    """
    h = a.copy()
    h[:, 1:-1] += a[:, 1:-1]
    h[:, 1:-1] += a[:, :-2]
    h[:, 1:-1] += a[:, 2:]
    h[:, 1:-1] *= 0.25
    out = h.copy()
    out[1:-1, :] += h[1:-1, :]
    out[1:-1, :] += h[:-2, :]
    out[1:-1, :] += h[2:, :]
    out[1:-1, :] *= 0.25
    if amount < 1.0:
        out -= a
        out *= amount
        out += a
    return out


def _ring(canvas: np.ndarray, phalanx: LongBone, at: float, spacing: float) -> None:
    """A metal ring round a proximal phalanx: opaque, brightest at its sides (a tube end-on)."""
    height, width = canvas.shape
    mm = 1.0 / spacing
    u0 = at * phalanx.length
    w = float(phalanx.half_width(np.array([u0]))[0])
    inner = w + 3.0 * mm
    outer = inner + 1.5 * mm
    band = 1.4 * mm
    ring = RoundBone(
        name="ring", origin=phalanx.world(u0, 0.0), axis=phalanx.axis, flip=phalanx.flip,
        semi_u=band + 2, semi_v=outer + 2,
    )
    g = _grid(ring.image_bounds(), width, height)
    if g is None:
        return
    window, xs, ys = g
    u, v = ring.local(xs, ys)
    shell = np.sqrt(np.maximum(outer**2 - v * v, 0.0)) - np.sqrt(np.maximum(inner**2 - v * v, 0.0))
    profile = np.clip((band - np.abs(u)) + 0.5, 0.0, 1.0)
    canvas[window] += (METAL_MU * spacing * 2.0 * shell * profile).astype(np.float32)


def _marker(
    canvas: np.ndarray, letter: str, corner: str, spacing: float, rng: np.random.Generator
) -> None:
    """A lead side marker in a plastic holder: the letter is opaque, the holder faint."""
    height, width = canvas.shape
    size = max(int(round(13.0 / spacing)), 8)
    pad = max(size // 5, 2)
    box = size + 2 * pad
    img = Image.new("L", (box, box), 0)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, box - 1, box - 1), fill=10)
    font = _font(size)
    stroke = max(size // 14, 1)
    draw.text(
        (box / 2, box / 2), letter, fill=255, font=font, anchor="mm",
        stroke_width=stroke, stroke_fill=255,
    )
    img = img.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR, expand=True)
    mask = np.asarray(img, dtype=np.float32) / 255.0
    h, w = mask.shape
    margin = int(0.03 * width)
    x0 = margin if "l" in corner else width - margin - w
    y0 = margin if "t" in corner else height - margin - h
    x0, y0 = max(x0, 0), max(y0, 0)
    h, w = min(h, height - y0), min(w, width - x0)
    canvas[y0 : y0 + h, x0 : x0 + w] += 4.0 * mask[:h, :w]


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def save_png16(image: np.ndarray, path: Path | str, compress_level: int = 1) -> None:
    """Write a uint16 image as a 16-bit grayscale PNG (fast compression: noise barely packs)."""
    if image.dtype != np.uint16:
        raise ValueError("expected a uint16 image")
    Image.fromarray(image).save(path, format="PNG", compress_level=compress_level)


def load_png16(path: Path | str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img, dtype=np.uint16)


# --------------------------------------------------------------------------------------------
# Public generators
# --------------------------------------------------------------------------------------------


def _normal_gaps(jitter: dict[str, float]) -> dict[str, float]:
    names = list(FINGER_JOINTS) + [
        "cmc1", "_cmc2", "cmc3", "cmc4", "cmc5", "mna", "capnlun", "radcar", "intercarpal",
    ]
    return {n: NORMAL_GAP[_gap_key(n.lstrip("_"))] * jitter.get(n, 1.0) for n in names}


def _layout_points(layout: _Layout) -> np.ndarray:
    """Points that must stay in the image: bone corners and a soft-tissue margin round them."""
    pts = []
    for b in layout.bones.values():
        if b.name in ("radius", "ulna"):
            assert isinstance(b, LongBone)
            u0, u1 = b.length - 35.0, b.length + 8.0
            w = b.head_half + 8.0
            pts += [b.world(u, v) for u in (u0, u1) for v in (-w, w)]
            continue
        u0, u1, v0, v1 = b.local_bounds()
        pts += [b.world(u, v) for u in (u0 - 4.0, u1 + 5.0) for v in (v0 - 5.5, v1 + 5.5)]
    return np.array(pts)


def generate_hand(
    rng_or_seed: np.random.Generator | int | None,
    laterality: str,
    grades: Grades | None = None,
    config: PhantomConfig | None = None,
    *,
    hand_size: float | None = None,
    patient_traits: object | None = None,
) -> Phantom:
    """One hand radiograph.

    `grades` forces the disease ({"erosion": {landmark: g}, "jsn": {...}}; areas left out are 0);
    without it grades are drawn as for one hand of a random patient. Random numbers are drawn the
    same way whatever the grades, so the same seed with different forced grades gives the same
    hand, pose and noise, differing only where the grades differ.
    """
    if laterality not in ("L", "R"):
        raise ValueError("laterality must be 'L' or 'R'")
    cfg = config or PhantomConfig()
    seed = rng_or_seed if isinstance(rng_or_seed, (int, np.integer)) else None
    rng = _as_rng(rng_or_seed)
    # Independent streams, so that forcing grades or a distractor's choices (which draw a varying
    # number of values) changes nothing else in the film.
    streams = [np.random.default_rng(s) for s in rng.integers(0, 2**63 - 1, size=9)]
    pose_rng, grade_rng, lesion_rng, texture_rng, noise_rng = streams[:5]
    exposure_rng, ring_rng, marker_rng, collimation_rng = streams[5:]
    pv = cfg.pose_variation
    ev = cfg.exposure_variation

    # Disease.
    drawn = sample_patient_grades(grade_rng)[0 if laterality == "L" else 1]
    final = _complete_grades(grades if grades is not None else drawn)
    lesion_draws = _draw_lesions(lesion_rng)
    traits = None
    if cfg.mode == "realistic":
        from . import realistic

        # Drawn after every stream of the simple mode, so that mode's films stay byte-identical.
        if isinstance(patient_traits, dict):
            patient_traits = realistic.PatientTraits(**patient_traits)
        traits = realistic.draw_hand_traits(
            np.random.default_rng(int(rng.integers(0, 2**63 - 1))), patient_traits, final, list(_normal_gaps({}))
        )
    elif cfg.mode != "simple":
        raise ValueError(f"unknown phantom mode {cfg.mode!r}; expected 'simple' or 'realistic'")

    # Anatomy and pose.
    drawn_size = float(1.0 + pv * pose_rng.uniform(-0.09, 0.09))
    size = hand_size if hand_size is not None else drawn_size
    spread = float(1.0 + pv * pose_rng.uniform(-0.7, 0.7))
    finger_jitter = {r: float(pv * pose_rng.normal(0.0, 2.0)) for r in range(1, 6)}
    gap_jitter = {n: float(1.0 + 0.08 * pose_rng.uniform(-1.0, 1.0)) for n in _normal_gaps({})}
    angle = math.radians(pv * pose_rng.uniform(-11.0, 11.0))
    magnification = float(1.0 + pv * pose_rng.uniform(-0.06, 0.03))
    shift = pose_rng.uniform(-1.0, 1.0, size=2) * pv

    shape_jitter = pv * pose_rng.uniform(-1.0, 1.0, size=(64, 2))
    gaps = _normal_gaps(gap_jitter)
    if traits is not None:
        gaps, shape_jitter = _realistic_geometry(traits, shape_jitter)
    normal_layout = _build_layout(gaps, spread, finger_jitter, shape_jitter)
    graded_gaps = dict(gaps)
    for name, g in final["jsn"].items():
        if traits is not None:
            graded_gaps[name] = gaps[name] * (1.0 - traits.jsn_loss[name])
        else:
            graded_gaps[name] = gaps[name] * JSN_GAP_FRACTION[g]
    layout = _build_layout(graded_gaps, spread, finger_jitter, shape_jitter)

    # Fit: nominal pixel spacing, shrunk if the hand would not fit. Measured on the normal-gap
    # layout, so forcing JSN grades never changes the scale or position.
    spacing = cfg.nominal_spacing_mm / magnification
    scale = size / spacing
    mirror = laterality == "L"
    probe = Pose(scale=1.0, angle=angle, mirror=mirror, offset=(0.0, 0.0))
    pts = np.array([probe.point(p) for p in _layout_points(normal_layout)])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    margin = 0.02 * cfg.width
    fit = min(
        (cfg.width - 2 * margin) / (hi[0] - lo[0]), (cfg.height - 2 * margin) / (hi[1] - lo[1])
    )
    if scale > fit:
        scale = fit
        spacing = size / scale
    slack_x = cfg.width - 2 * margin - scale * (hi[0] - lo[0])
    slack_y = cfg.height - 2 * margin - scale * (hi[1] - lo[1])
    ox = margin + 0.5 * slack_x + 0.4 * slack_x * shift[0] - scale * lo[0]
    # Fingertips near the top, as a technologist would centre a hand film; the forearm runs out.
    oy = margin + 0.25 * slack_y + 0.25 * slack_y * shift[1] - scale * lo[1]
    pose = Pose(scale=scale, angle=angle, mirror=mirror, offset=(float(ox), float(oy)))

    # Disease drawn into the canonical bones, then everything posed.
    if traits is None:
        for name in EROSION_LANDMARKS:
            grade = final["erosion"][name]
            for bone_name, les in _make_lesions(name, grade, lesion_draws[name], layout.bones):
                layout.bones[bone_name].lesions.append(les)
    else:
        _realistic_disease(layout, final, traits)
    bridges: list[tuple[str, float]] = []
    for name, g in final["jsn"].items():
        if g == 4:
            j = layout.joints[name]
            prox, dist = layout.bones[j.proximal], layout.bones[j.distal]
            if isinstance(prox, LongBone):
                prox.fused_distal = True
            if isinstance(dist, LongBone):
                dist.fused_proximal = True
            half = min(_half_at_joint(prox, "distal"), _half_at_joint(dist, "proximal"))
            bridges.append((name, 0.75 * half))
    bones = {n: b.posed(pose) for n, b in layout.bones.items()}
    joints = {}
    for n, j in layout.joints.items():
        p = pose.point(np.array(j.point))
        a = pose.vector(np.array(j.axis))
        joints[n] = replace(
            j, point=(float(p[0]), float(p[1])), axis=(float(a[0]), float(a[1])),
            gap_px=j.gap_px * scale,
        )
    soft_px = _Layout(
        bones={},
        joints={},
        soft=[
            (pose.point(a), pose.point(b), ra * scale, rb * scale) for a, b, ra, rb in layout.soft
        ],
        palms=[[pose.point(p) for p in poly] for poly in layout.palms],
        forearm=(
            pose.point(layout.forearm[0]), pose.point(layout.forearm[1]),
            layout.forearm[2] * scale, layout.forearm[3] * scale,
        ),
    )

    # Attenuation image: soft tissue + bone (+ metal).
    px_mm = 1.0 / spacing  # image pixels per real mm
    texture = Texture(texture_rng, spacing) if cfg.trabecular_texture else None
    lesion_masks: dict[str, list[tuple[int, int, np.ndarray]]] = {}
    bone_atten, eroded = _render_bones(bones, cfg.width, cfg.height, texture, lesion_masks)
    if traits is not None:
        from . import realistic

        realistic.periarticular_osteopenia(bone_atten, joints, scale, traits.patient.periarticular)
        realistic.oa_changes(bone_atten, joints, bones, traits.oa_joints, scale, CORTEX_MU)
    bone_atten *= spacing  # path lengths were in pixels; attenuation is per mm
    # A bridge is about as dense as the trabecular bone of the ends it joins (h in canonical mm).
    _render_bridges(
        bone_atten,
        [(joints[n], h * scale, 2.3 * TRABECULAR_MU * h * size) for n, h in bridges],
    )

    factor = 4
    sdf = _soft_tissue_sdf(soft_px, cfg.width, cfg.height, factor, blend=5.0 * scale)
    depth_mm = np.maximum(-sdf, 0.0) * spacing
    round_r = 8.5 * size
    d = np.minimum(depth_mm, round_r)
    # Fingers are round in section; the palm and forearm are flatter, so thickness grows slowly
    # once deeper than a finger's radius. Smooth, so computed coarse and upsampled.
    thickness = 2.0 * np.sqrt(d * (2.0 * round_r - d)) + 0.22 * (depth_mm - d)
    atten = bone_atten
    atten += _upsample(SOFT_MU * thickness, cfg.width, cfg.height)
    if traits is not None:
        atten += SOFT_MU * realistic.swelling_thickness(atten.shape, joints, traits.swelling, scale)

    distractors: dict[str, object] = {}
    if cfg.distractors:
        if ring_rng.random() < cfg.ring_probability:
            # Mostly the ring finger's proximal phalanx.
            finger = int(ring_rng.choice([4, 4, 4, 3, 5, 2]))
            ph = bones[f"pp{finger}"]
            assert isinstance(ph, LongBone)
            _ring(atten, ph, float(ring_rng.uniform(0.35, 0.6)), spacing)
            distractors["ring"] = f"pp{finger}"
        if marker_rng.random() < cfg.marker_probability:
            corner = _free_corner(sdf, factor, marker_rng)
            if corner is not None:
                _marker(atten, laterality, corner, spacing, marker_rng)
                distractors["marker"] = corner

    # Detector: blur, tone curve (film-like shoulder, window, gamma), noise.
    atten = _blur(atten, float(1.0 - 0.5 * ev * exposure_rng.random()))
    y = _tone_map(atten, exposure_rng, ev)
    if traits is not None:
        y = realistic.unsharp_mask(y, *traits.unsharp)
    # Heel effect: exposure falls off slightly from one end of the film to the other.
    heel = np.linspace(-1.0, 1.0, cfg.height, dtype=np.float32)[:, None]
    y += (0.012 * ev * exposure_rng.uniform(-1, 1)) * heel
    sigma = cfg.noise * float(0.008 + 0.01 * ev * exposure_rng.random())
    white = 65535.0 * float(1.0 - 0.15 * ev * exposure_rng.random())
    if sigma > 0:
        # Quantum noise: relatively larger where fewer photons arrive, i.e. behind bone.
        if traits is not None:
            noise = realistic.grainy_noise(noise_rng, (cfg.height, cfg.width), traits.grain)
        else:
            noise = noise_rng.standard_normal((cfg.height, cfg.width), dtype=np.float32)
        y += noise * (sigma * (0.5 + y))
    if cfg.distractors and collimation_rng.random() < cfg.collimation_probability:
        side = _collimate(y, sdf, factor, collimation_rng)
        if side:
            distractors["collimation"] = side
    image = (np.clip(y, 0.0, 1.0) * white + 0.5).astype(np.uint16)

    # Ground truth in pixels.
    landmarks: dict[str, Point] = {}
    boxes: dict[str, Box] = {}
    for name in HAND_LANDMARKS:
        if name in joints:
            landmarks[name] = joints[name].point
        else:
            landmarks[name] = _bone_area_point(name, bones)
        x0, y0, x1, y1 = _area_box(name, joints, bones, px_mm)
        boxes[name] = (
            max(x0, 0.0), max(y0, 0.0), min(x1, cfg.width - 1.0), min(y1, cfg.height - 1.0)
        )
    gap_width = {n: (joints[n].gap_px if final["jsn"][n] < 4 else 0.0) for n in JSN_LANDMARKS}
    seen: dict[str, dict[str, float]] = {}
    if traits is not None:
        by_area: dict[str, list[Lesion]] = {}
        for b in bones.values():
            for les in b.lesions:
                by_area.setdefault(les.landmark, []).append(les)
        rays = {n: int(n[-1]) for n in FINGER_JOINTS}
        seen = realistic.visibility(final, by_area, traits, float(spacing), scale, sigma, rays)
    return Phantom(
        image=image,
        laterality=laterality,
        landmarks=landmarks,
        boxes=boxes,
        grades=final,
        pixel_spacing_mm=float(spacing),
        gap_width_px=gap_width,
        eroded_cortex_px={n: int(eroded.get(n, 0)) for n in EROSION_LANDMARKS},
        joints={n: joints[n] for n in HAND_LANDMARKS if n in joints},
        bones=bones,
        distractors=distractors,
        seed=int(seed) if seed is not None else None,
        hand_size=float(size),
        config=cfg,
        visibility=seen,
        lesion_masks=lesion_masks,
        patient_traits=asdict(traits.patient) if traits is not None else None,
    )


@lru_cache(maxsize=1)
def _bone_order() -> tuple[str, ...]:
    """Bones in the order _build_layout adds them (rows of its shape jitter)."""
    return tuple(_build_layout(_normal_gaps({}), 1.0, {r: 0.0 for r in range(1, 6)}, None).bones)


def _finger_ray(name: str) -> int | None:
    if name[:2] in ("pp", "mp", "dp") and name[2:].isdigit():
        return int(name[2:])
    return None


def _realistic_geometry(traits, shape_jitter: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """Individual normal joint widths, and phalanges and joint spaces foreshortened by flexion."""
    base = _normal_gaps({})
    gaps = {n: base[n] * traits.width_factor.get(n, 1.0) for n in base}
    for n in FINGER_JOINTS:
        if not n.startswith("mcp"):
            # Flexion tilts the joint out of the beam, so its space projects narrower.
            gaps[n] *= traits.flexion[int(n[-1])]
    jitter = shape_jitter.copy()
    for i, name in enumerate(_bone_order()):
        ray = _finger_ray(name)
        if ray is not None:
            factor = traits.flexion[ray] * (1.0 + 0.035 * jitter[i, 0])
            jitter[i, 0] = (factor - 1.0) / 0.035
    return gaps, jitter


# Bones distal to each finger joint (they move when the joint subluxes).
def _distal_bones(name: str) -> list[str]:
    ray = name[-1]
    if name == "ip1":
        return ["dp1"]
    if name == "mcp1":
        return ["pp1", "dp1"]
    kind = name[:-1]
    chain = {"mcp": ["pp", "mp", "dp"], "pip": ["mp", "dp"], "dip": ["dp"]}[kind]
    return [f"{c}{ray}" for c in chain]


def _realistic_disease(layout: _Layout, final: Grades, traits) -> None:
    """Lobed erosions graded by surface share, subluxation at grade 5, osteopenic bone."""
    from . import realistic

    rng = np.random.default_rng(traits.lesion_seed)
    for name in EROSION_LANDMARKS:
        grade = final["erosion"][name]
        # Fixed draws per area, so one area's grade does not move another's lesions.
        area_rng = np.random.default_rng([traits.lesion_seed, EROSION_LANDMARKS.index(name)])
        share = realistic.erosion_share_for(grade, float(area_rng.random()))
        for bone_name, les in realistic.make_lesions(name, grade, share, area_rng, _erosion_sites(name), layout.bones):
            layout.bones[bone_name].lesions.append(les)
        if grade == 5 and name in FINGER_JOINTS and name in layout.joints:
            j = layout.joints[name]
            prox = layout.bones[j.proximal]
            half = prox.head_half if isinstance(prox, LongBone) else 3.0
            axis = np.array(j.axis)
            perp = np.array([-axis[1], axis[0]])
            shift = perp * (0.45 * half * (1 if rng.random() < 0.5 else -1)) - axis * 0.6 * j.gap_px
            for b in _distal_bones(name):
                if b in layout.bones:
                    layout.bones[b].origin = layout.bones[b].origin + shift
            for other, oj in list(layout.joints.items()):
                if oj.proximal in _distal_bones(name):
                    p = np.array(oj.point) + shift
                    layout.joints[other] = replace(oj, point=(float(p[0]), float(p[1])))
            traits.subluxed.append(name)
    o = traits.patient.osteopenia
    for b in layout.bones.values():
        b.density *= 1.0 - 0.45 * o
        b.cortex *= 1.0 - 0.4 * o
        if isinstance(b, LongBone):
            b.end_cortex *= 1.0 - 0.3 * o


def _half_at_joint(bone: Bone, end: str) -> float:
    if isinstance(bone, LongBone):
        return bone.head_half if end == "distal" else bone.base_half
    assert isinstance(bone, RoundBone)
    return 0.8 * min(bone.semi_u, bone.semi_v)


def _bone_area_point(name: str, bones: dict[str, Bone]) -> Point:
    """Bone-centre landmarks; radius and ulna sit just behind their distal articular surface."""
    if name == "mul":
        b = bones["trapezium"]
        p = b.world(0.0, 0.0)
    elif name == "nav":
        p = bones["scaphoid"].world(0.0, 0.0)
    elif name == "lunate":
        p = bones["lunate"].world(0.0, 0.0)
    elif name in ("radius", "ulna"):
        b = bones[name]
        assert isinstance(b, LongBone)
        p = b.world(b.length - 0.5 * b.head_half, 0.0)
    else:
        raise KeyError(name)
    return (float(p[0]), float(p[1]))


# Bones whose outline bounds a bone-area box (radius and ulna: only their distal ends).
AREA_BONES = {
    "mul": ("trapezium", "trapezoid"),
    "nav": ("scaphoid",),
    "lunate": ("lunate",),
    "radius": ("radius",),
    "ulna": ("ulna", "ulna_styloid"),
}


def _area_box(name: str, joints: dict[str, Joint], bones: dict[str, Bone], mm: float) -> Box:
    """Axis-aligned box (pixels) holding everything scored for one area, before clipping.

    A joint gets a square round its landmark reaching about two bone half-widths along and
    across (both articular ends and their bare areas); a bone area gets its bone's outline.
    """
    if name in joints:
        j = joints[name]
        ends = min(
            _half_at_joint(bones[j.proximal], "distal"),
            _half_at_joint(bones[j.distal], "proximal"),
        )
        half = 2.1 * max(ends, 3.0 * mm)
        x, y = j.point
        return (x - half, y - half, x + half, y + half)
    corners = []
    for bone_name in AREA_BONES[name]:
        b = bones[bone_name]
        u0, u1, v0, v1 = b.local_bounds()
        if isinstance(b, LongBone):
            u0 = b.length - 2.5 * b.head_half
        corners += [b.world(u, v) for u in (u0, u1) for v in (v0, v1)]
    pts = np.array(corners)
    pad = 1.5 * mm
    (x0, y0), (x1, y1) = pts.min(axis=0) - pad, pts.max(axis=0) + pad
    return (float(x0), float(y0), float(x1), float(y1))


def _tone_map(atten: np.ndarray, rng: np.random.Generator, variation: float) -> np.ndarray:
    """Log-domain attenuation -> display value in [0, 1], through a lookup table for speed."""
    kappa = 1.0 + 0.25 * variation * rng.uniform(-1, 1)
    white_point = 2.1 + 0.25 * variation * rng.uniform(-1, 1)
    gamma = 1.0 + 0.22 * variation * rng.uniform(-1, 1)
    background = 0.035 + 0.04 * variation * rng.random()
    top = 8.0
    levels = 8192
    a = np.linspace(0.0, top, levels, dtype=np.float64)
    curve = (1.0 - np.exp(-kappa * a)) / (1.0 - math.exp(-kappa * white_point))
    lut = (background + (1.0 - background) * np.clip(curve, 0.0, 1.0) ** gamma).astype(np.float32)
    idx = np.clip(atten * ((levels - 1) / top), 0, levels - 1).astype(np.int32)
    return lut[idx]


def _free_corner(sdf: np.ndarray, factor: int, rng: np.random.Generator) -> str | None:
    """A corner whose neighbourhood holds no soft tissue, for the side marker."""
    gh, gw = sdf.shape
    k = max(gw // 6, 3)
    corners = {"tl": sdf[:k, :k], "tr": sdf[:k, -k:], "bl": sdf[-k:, :k], "br": sdf[-k:, -k:]}
    free = [c for c, block in corners.items() if block.min() > 2.0 * factor]
    if not free:
        return None
    return str(rng.choice(sorted(free)))


def _collimate(y: np.ndarray, sdf: np.ndarray, factor: int, rng: np.random.Generator) -> str:
    """Blend the unexposed (bright) region outside a collimator blade along one free side."""
    height, width = y.shape
    inside = sdf < 0
    cols = np.nonzero(inside.any(axis=0))[0]
    rows = np.nonzero(inside.any(axis=1))[0]
    if len(cols) == 0:
        return ""
    free = {
        "left": cols[0] * factor,
        "right": width - (cols[-1] + 1) * factor,
        "top": rows[0] * factor,
    }
    options = [s for s, room in free.items() if room > 0.05 * width]
    if not options:
        return ""
    side = str(rng.choice(sorted(options)))
    room = free[side]
    depth = rng.uniform(0.3, 0.8) * room
    tilt = rng.uniform(-0.02, 0.02)
    level = float(rng.uniform(0.7, 0.92))
    if side == "top":
        xs = np.arange(width, dtype=np.float32)
        edge = depth + tilt * (xs - width / 2)
        dist = edge[None, :] - np.arange(height, dtype=np.float32)[:, None]
    else:
        ys = np.arange(height, dtype=np.float32)
        edge = depth + tilt * (ys - height / 2)
        col = np.arange(width, dtype=np.float32)
        pos = col[None, :] if side == "left" else (width - 1 - col)[None, :]
        dist = edge[:, None] - pos
    m = np.clip(dist / 3.0 + 0.5, 0.0, 1.0)
    y += m * (level - y)
    return side


def generate_patient(
    seed: int, config: PhantomConfig | None = None, severity: float | None = None
) -> tuple[Phantom, Phantom]:
    """Both hands of one synthetic patient: (left, right), correlated grades, one hand size.

    `severity` fixes the patient's disease level (0 none, about 1 typical, 3 and more severe);
    by default it is drawn from a skewed distribution in which most patients have little damage.
    """
    rng = np.random.default_rng(seed)
    left_grades, right_grades = sample_patient_grades(rng, severity=severity)
    size = float(1.0 + (config or PhantomConfig()).pose_variation * rng.uniform(-0.09, 0.09))
    left_seed, right_seed = (int(s) for s in rng.integers(0, 2**63 - 1, size=2))
    traits = None
    if config is not None and config.mode == "realistic":
        from .realistic import draw_patient_traits

        traits = draw_patient_traits(rng, (left_grades, right_grades))
    left = generate_hand(left_seed, "L", left_grades, config, hand_size=size, patient_traits=traits)
    right = generate_hand(right_seed, "R", right_grades, config, hand_size=size, patient_traits=traits)
    return left, right


def side_code(phantom: Phantom) -> str:
    """`LH`, `RH`, `LF` or `RF`, as in RA2-DREAM file names."""
    return phantom.laterality + ("F" if getattr(phantom, "body_part", "hand") == "foot" else "H")


def generate_phantoms(
    count: int, seed: int, config: PhantomConfig | None = None, patient_films: Callable | None = None,
) -> Iterator[tuple[str, Phantom]]:
    """Yield (patient_id, phantom) for `count` images of successive patients: both hands of each,
    or whatever `patient_films(patient_seed, config)` draws for one patient (hands and feet)."""
    draw = patient_films or generate_patient
    made = 0
    patient = 0
    while made < count:
        pid = f"phantom{seed:04d}p{patient:04d}"
        for ph in draw(seed * 100_003 + patient, config):
            if made < count:
                yield pid, ph
                made += 1
        patient += 1


def write_phantom_set(
    out_dir: Path | str, count: int, seed: int, config: PhantomConfig | None = None,
    contact_sheet: bool = True, patient_films: Callable | None = None,
) -> list[Path]:
    """Write `count` 16-bit PNGs named `{patient}-{LH|RH|LF|RF}.png`, a JSON beside each, and
    `contact_sheet.png` (first 12 images). Returns the PNG paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    sheet: list[tuple[str, Phantom]] = []
    for pid, ph in generate_phantoms(count, seed, config, patient_films):
        path = out / f"{pid}-{side_code(ph)}.png"
        ph.save(path)
        paths.append(path)
        if len(sheet) < 12:
            sheet.append((path.stem, ph))
    if contact_sheet and sheet:
        sheet_image = make_contact_sheet([p for _, p in sheet], titles=[t for t, _ in sheet])
        sheet_image.save(out / "contact_sheet.png")
    return paths


def benchmark(count: int = 20, config: PhantomConfig | None = None) -> dict[str, float]:
    """Time generation alone and generation plus PNG encoding, single process."""
    import io

    cfg = config or PhantomConfig()
    generate_hand(0, "R", config=cfg)  # warm-up (imports, font loading)
    t0 = time.perf_counter()
    phantoms = [generate_hand(1000 + i, "LR"[i % 2], config=cfg) for i in range(count)]
    t1 = time.perf_counter()
    for ph in phantoms:
        buf = io.BytesIO()
        Image.fromarray(ph.image).save(buf, format="PNG", compress_level=1)
        buf.write(ph.to_json().encode())
    t2 = time.perf_counter()
    return {
        "count": count,
        "generate_s": (t1 - t0) / count,
        "encode_s": (t2 - t1) / count,
        "per_second": count / (t1 - t0),
        "per_second_with_png": count / (t2 - t0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for PNGs, JSONs and contact_sheet.png")
    parser.add_argument("--count", type=int, default=None, help="number of images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=PhantomConfig.width)
    parser.add_argument("--height", type=int, default=PhantomConfig.height)
    parser.add_argument("--bench", action="store_true", help="print phantoms per second")
    parser.add_argument("--mode", choices=["simple", "realistic"], default=PhantomConfig.mode)
    parser.add_argument("--grade-sheet", type=Path, default=None,
                        help="write one joint at every grade (erosion and JSN rows) to this PNG")
    parser.add_argument("--joint", default="mcp2", help="the joint of --grade-sheet")
    args = parser.parse_args(argv)
    cfg = PhantomConfig(width=args.width, height=args.height, mode=args.mode)
    if args.grade_sheet:
        from .contact_sheet import make_grade_sheet

        make_grade_sheet(args.joint, args.seed, cfg).save(args.grade_sheet)
        print(f"wrote {args.grade_sheet}")
        return 0
    if args.bench:
        r = benchmark(args.count or 20, cfg)
        print(
            f"{r['per_second']:.2f} phantoms/s ({1000 * r['generate_s']:.0f} ms each, "
            f"{cfg.width}x{cfg.height}, {int(r['count'])} images, single process); "
            f"with 16-bit PNG encoding {r['per_second_with_png']:.2f} phantoms/s"
        )
        return 0
    if args.out is None:
        parser.error("--out is required unless --bench is given")
    t0 = time.perf_counter()
    paths = write_phantom_set(args.out, args.count or 8, args.seed, cfg)
    print(f"wrote {len(paths)} phantoms to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
