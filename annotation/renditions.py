"""Browser renditions of radiographs: 8-bit files made from the stored 16-bit pixels.

The stored pixels are 16-bit; browsers get 8-bit files, a small one first for a fast first paint
and the full-resolution one once the reader zooms in. Renditions are made on first request and
kept in the media storage beside the radiographs (local disk or the object store), so every web
server of a deployment shares them.
"""
from __future__ import annotations

import io
import threading

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from .models import Radiograph

RENDITIONS = {
    "display": {"max_side": 1600, "format": "JPEG", "suffix": "jpg"},
    "full": {"max_side": None, "format": "PNG", "suffix": "png"},
}


def rendition_name(*, project_id: int, checksum: str, kind: str) -> str:
    """The storage name of a rendition; named by the checksum, so it can never belong to other pixels."""
    return f"renditions/{project_id}/{checksum}-{kind}.{RENDITIONS[kind]['suffix']}"


def radiograph_rendition(*, radiograph: Radiograph, kind: str) -> str:
    """Storage name of an 8-bit rendition of the radiograph, made and stored on first request."""
    name = rendition_name(project_id=radiograph.project_id, checksum=radiograph.checksum, kind=kind)
    if default_storage.exists(name):
        return name
    # A prefetch and the page's own request often ask at once: the second waits for the first.
    with _lock(name):
        if not default_storage.exists(name):
            with radiograph.image.open("rb") as handle:
                data = rendition_bytes(handle.read(), kind=kind)
            saved = default_storage.save(name, ContentFile(data))
            if saved != name:
                # Another process stored the same rendition meanwhile (the local disk keeps both);
                # the copy is identical, so it goes.
                default_storage.delete(saved)
    return name


def renditions_delete(*, project_id: int, checksum: str) -> None:
    """Delete every rendition of one radiograph's pixels (after the radiograph was deleted)."""
    for kind in RENDITIONS:
        default_storage.delete(rendition_name(project_id=project_id, checksum=checksum, kind=kind))


def rendition_bytes(image_bytes: bytes, *, kind: str) -> bytes:
    """Encode the 8-bit rendition `kind` of an image file.

    Grey levels are stretched between the 0.5th and 99.8th percentiles, a default window like a
    viewer's: a 12-bit image stored in 16 bits would otherwise look black.
    """
    spec = RENDITIONS[kind]
    image = Image.open(io.BytesIO(image_bytes))
    image.load()
    if image.mode not in {"I;16", "I;16B", "I", "L"}:
        image = image.convert("L")
    pixels = np.asarray(image)
    low, high = np.percentile(pixels[::4, ::4], [0.5, 99.8])
    high = max(high, low + 1)
    if pixels.dtype in (np.uint8, np.uint16):
        # A lookup table is several times faster than float arithmetic over millions of pixels.
        levels = np.arange(np.iinfo(pixels.dtype).max + 1, dtype=np.float32)
        table = np.clip((levels - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)
        scaled = table[pixels]
    else:
        scaled = np.clip((pixels.astype(np.float32) - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)
    rendition = Image.fromarray(scaled)
    if spec["max_side"]:
        # Bicubic is antialiased when shrinking and about twice as fast as Lanczos here.
        rendition.thumbnail((spec["max_side"], spec["max_side"]), Image.Resampling.BICUBIC, reducing_gap=2.0)
    output = io.BytesIO()
    if spec["format"] == "JPEG":
        rendition.save(output, format="JPEG", quality=90)
    else:
        rendition.save(output, format="PNG", compress_level=3)
    return output.getvalue()


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())
