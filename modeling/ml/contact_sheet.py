"""Contact sheet: a grid of phantom radiographs with their landmarks and drawn grades.

Used to eyeball a phantom set (and written beside every set by `write_phantom_set`). Landmarks are
coloured by what they carry: red erosion only, blue JSN only, yellow both; a graded joint gets its
grades printed beside it ("E2 J1").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from modeling.ml.phantoms import Phantom

EROSION_ONLY = (235, 70, 60)
JSN_ONLY = (70, 140, 255)
BOTH = (250, 210, 40)


def _to_8bit(image: np.ndarray) -> np.ndarray:
    """Window a 16-bit image to its 0.5-99.8 percentile range for display."""
    lo, hi = np.percentile(image[::4, ::4], (0.5, 99.8))
    scaled = (image.astype(np.float32) - lo) / max(float(hi - lo), 1.0)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def draw_phantom(
    phantom: "Phantom", width: int = 320, title: str | None = None, labels: bool = True
) -> Image.Image:
    """One tile: the radiograph scaled to `width`, landmarks, graded joints and a title line."""
    scale = width / phantom.width
    height = int(round(phantom.height * scale))
    tile = Image.fromarray(_to_8bit(phantom.image)).resize((width, height), Image.LANCZOS)
    tile = tile.convert("RGB")
    draw = ImageDraw.Draw(tile)
    font = ImageFont.load_default(size=max(9, width // 32))
    erosion = phantom.grades.get("erosion", {})
    jsn = phantom.grades.get("jsn", {})
    r = max(2.0, width / 160)
    for name, (x, y) in phantom.landmarks.items():
        if name in erosion and name in jsn:
            colour = BOTH
        else:
            colour = EROSION_ONLY if name in erosion else JSN_ONLY
        cx, cy = x * scale, y * scale
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=1)
        if not labels:
            continue
        parts = []
        if erosion.get(name, 0):
            parts.append(f"E{erosion[name]}")
        if jsn.get(name, 0):
            parts.append(f"J{jsn[name]}")
        if parts:
            draw.text((cx + r + 1, cy - r - 1), " ".join(parts), fill=colour, font=font)
    head = title or ""
    total_e = sum(erosion.values())
    total_j = sum(jsn.values())
    part = "F" if getattr(phantom, "body_part", "hand") == "foot" else "H"
    head = f"{head} {phantom.laterality}{part}  E{total_e} J{total_j}".strip()
    if phantom.distractors:
        head += "  +" + ",".join(sorted(phantom.distractors))
    draw.rectangle((0, 0, width, font.size + 4), fill=(0, 0, 0))
    draw.text((3, 2), head, fill=(230, 230, 230), font=font)
    return tile


def make_contact_sheet(
    phantoms: Sequence["Phantom"],
    titles: Sequence[str] | None = None,
    columns: int = 4,
    tile_width: int = 320,
    labels: bool = True,
) -> Image.Image:
    """A grid of tiles, `columns` wide, on a dark background."""
    if not phantoms:
        raise ValueError("no phantoms to draw")
    tiles = [
        draw_phantom(p, tile_width, titles[i] if titles else None, labels)
        for i, p in enumerate(phantoms)
    ]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    tile_h = max(t.height for t in tiles)
    gap = 4
    sheet = Image.new(
        "RGB", (columns * (tile_width + gap) + gap, rows * (tile_h + gap) + gap), (40, 40, 40)
    )
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet.paste(t, (gap + c * (tile_width + gap), gap + r * (tile_h + gap)))
    return sheet


def make_grade_sheet(joint: str, seed: int, config: object | None = None, tile: int = 200) -> Image.Image:
    """One joint of one hand at every grade: an erosion row (0-5) and a JSN row (0-4).

    The same seed with forced grades gives the same hand, pose and film, so the tiles differ only
    in the disease, as a reader calibrating against an atlas would want to compare them.
    """
    from modeling.ml.phantoms import MAX_GRADE, generate_hand

    rows: list[list[Image.Image]] = []
    for dim in ("erosion", "jsn"):
        row = []
        for g in range(MAX_GRADE[dim] + 1):
            ph = generate_hand(seed, "R", {dim: {joint: g}}, config)
            x0, y0, x1, y1 = ph.boxes[joint]
            crop = _to_8bit(ph.image)[int(y0) : int(y1), int(x0) : int(x1)]
            img = Image.fromarray(crop).resize((tile, tile), Image.LANCZOS).convert("RGB")
            draw = ImageDraw.Draw(img)
            font = ImageFont.load_default(size=14)
            label = f"{joint} {'E' if dim == 'erosion' else 'J'}{g}"
            seen = ph.visibility.get(dim, {}).get(joint)
            if seen is not None:
                label += f"  vis {seen:.2f}"
            draw.rectangle((0, 0, tile, 18), fill=(0, 0, 0))
            draw.text((3, 2), label, fill=(230, 230, 230), font=font)
            row.append(img)
        rows.append(row)
    gap = 4
    columns = max(len(r) for r in rows)
    sheet = Image.new("RGB", (columns * (tile + gap) + gap, len(rows) * (tile + gap) + gap), (40, 40, 40))
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            sheet.paste(img, (gap + c * (tile + gap), gap + r * (tile + gap)))
    return sheet
