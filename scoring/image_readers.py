"""Readers who see the image: errors that depend on how visible each lesion is.

`scoring.readers` draws a grade through a fixed confusion matrix, so a faint grade-1 erosion and a
glaring one are missed equally often. Here a reader's chance to miss or under-grade a lesion grows
as its visibility falls (the phantom generator's per-area visibility: size, contrast, osteopenia,
overlap), and on top of what they see each reader has habits:

- a severity bias (in grades; positive over-calls),
- a compressed scale (grades pulled towards the middle: rarely 0, rarely the maximum),
- fatigue: a drift towards under-calling over a reading day (items in reading order),
- occasional mix-ups: the grade of a neighbouring joint, or of the other side, entered for this one.

Item difficulty comes from the films, so an aggregator that models readers with a confusion
matrix alone (Dawid-Skene) is not handed the simulator's own model. numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .readers import Rng, _as_rng


def visibility_array(
    visibility: Sequence[Mapping[str, Mapping[str, float]]], dimension: str, landmarks: Sequence[str]
) -> NDArray[np.float64]:
    """Per-film visibility dicts ({dimension: {landmark: v}}) as a films x landmarks array.

    A landmark a film does not list is taken as fully visible (1.0). The result is also the
    ``visibility`` input of `scoring.readers.draw_grades` (the chance an item can be judged).
    """
    out = np.ones((len(visibility), len(landmarks)))
    for i, film in enumerate(visibility):
        values = film.get(dimension, {}) if film else {}
        for j, name in enumerate(landmarks):
            if name in values:
                out[i, j] = float(values[name])
    if out.size and (out.min() < 0.0 or out.max() > 1.0):
        raise ValueError("visibility must lie in [0, 1]")
    return out


def miss_probability(visibility: ArrayLike, v50: float, slope: float) -> NDArray[np.float64]:
    """Chance that a lesion of this visibility is missed: 1/2 at ``v50``, falling as it rises."""
    v = np.asarray(visibility, dtype=float)
    return 1.0 / (1.0 + np.exp((v - v50) / max(slope, 1e-6)))


@dataclass(frozen=True)
class ImageReader:
    """One image-aware reader's habits (grades in units of the scale being read)."""

    name: str
    v50: float = 0.3  # visibility at which a lesion is missed half the time
    slope: float = 0.08
    spread: float = 0.3  # sd of the judgement of a seen lesion, in grades
    bias: float = 0.0  # severity bias: + over-calls, - under-calls
    compress: float = 1.0  # 1 uses the whole scale; 0.7 pulls grades 30 % towards the middle
    fatigue: float = 0.0  # grades lost by the end of a reading day (drift is linear in order)
    mixup: float = 0.0  # chance per item of entering a neighbouring item's grade
    archetype: str = ""

    def grade(
        self,
        true: ArrayLike,
        visibility: ArrayLike,
        max_grade: int,
        rng: Rng = None,
        *,
        order: ArrayLike | None = None,
        partner: ArrayLike | None = None,
    ) -> NDArray[np.int64]:
        """Grades for items (films x areas) of true grade ``true`` and visibility ``visibility``.

        ``order`` in [0, 1] is when in the reading day each item is read (default: films in row
        order); ``partner`` is the flat index of the item a mix-up reads instead (default: the
        next area of the same film). A missed lesion reads as 0 when small (grade <= 2), else
        one or two grades under; a seen lesion is judged with the reader's noise and habits.
        """
        g = _as_rng(rng)
        t = np.asarray(true, dtype=np.int64)
        v = np.broadcast_to(np.asarray(visibility, dtype=float), t.shape)
        if t.size and (t.min() < 0 or t.max() > max_grade):
            raise ValueError(f"grades must lie in 0..{max_grade}")
        if v.size and (v.min() < 0.0 or v.max() > 1.0):
            raise ValueError("visibility must lie in [0, 1]")
        # Every draw has a fixed shape, so one item's outcome does not shift another's.
        u_miss, u_under, noise, u_mix = g.random(t.shape), g.random(t.shape), g.standard_normal(t.shape), g.random(t.shape)
        missed = (t > 0) & (u_miss < miss_probability(v, self.v50, self.slope))
        under = np.where(t <= 2, t, 1 + (u_under < 0.5))
        seen = np.where(missed, t - under, t).astype(float)
        if order is None:
            rows = t.shape[0] if t.ndim else 1
            order = np.broadcast_to(np.linspace(0.0, 1.0, rows).reshape((-1,) + (1,) * max(t.ndim - 1, 0)), t.shape)
        drift = self.bias - self.fatigue * np.asarray(order, dtype=float)
        # A film hard to judge is judged more loosely.
        spread = self.spread * (1.0 + 0.8 * (1.0 - v))
        x = seen + drift + spread * noise
        mid = max_grade / 2.0
        x = mid + self.compress * (x - mid)
        given = np.clip(np.rint(x), 0, max_grade).astype(np.int64)
        if self.mixup > 0.0 and t.size > 1:
            flat = given.reshape(-1)
            idx = np.arange(flat.size)
            if partner is None:
                part = idx + 1
                last = t.shape[-1] if t.ndim else 1
                part[(idx % last) == last - 1] -= 2  # the last area swaps with the one before
                part = np.clip(part, 0, flat.size - 1)
            else:
                part = np.asarray(partner, dtype=np.int64).reshape(-1)
            swap = u_mix.reshape(-1) < self.mixup
            flat = np.where(swap, flat[part], flat)
            given = flat.reshape(t.shape)
        return given


# Archetypes of an image-aware panel. "careful" is the reference reader of the README.
IMAGE_ARCHETYPES: dict[str, ImageReader] = {
    # Set on realistic phantoms (severity spread evenly) to the originating study's radiologists:
    # about 0.72 (erosion) and 0.78 (JSN) balanced accuracy, 0.98 within-one against truth.
    "careful": ImageReader("careful", v50=0.3, slope=0.07, spread=0.4),
    "severe": ImageReader("severe", v50=0.3, spread=0.45, bias=0.35),
    "compressed": ImageReader("compressed", v50=0.3, spread=0.4, compress=0.7, bias=0.1),
    "tired": ImageReader("tired", v50=0.35, spread=0.45, fatigue=0.6),
    "careless": ImageReader("careless", v50=0.4, slope=0.1, spread=0.6, mixup=0.03),
}


def make_image_reader_panel(seed: int, n: int = 3) -> list[ImageReader]:
    """``n`` readers cycling careful, severe, compressed, tired, careless; the seed jitters each
    reader's miss threshold and noise by up to 10 per cent."""
    if n < 1:
        raise ValueError("a panel needs at least one reader")
    rng = np.random.default_rng(seed)
    kinds = list(IMAGE_ARCHETYPES)
    panel = []
    for i in range(n):
        base = IMAGE_ARCHETYPES[kinds[i % len(kinds)]]
        j = 1.0 + 0.1 * rng.uniform(-1.0, 1.0, size=2)
        panel.append(ImageReader(
            name=f"reader_{i + 1}_{base.name}", v50=base.v50 * float(j[0]), slope=base.slope,
            spread=base.spread * float(j[1]), bias=base.bias, compress=base.compress,
            fatigue=base.fatigue, mixup=base.mixup, archetype=base.name,
        ))
    return panel
