"""Damaged DICOM files for the fuzz tests: valid files with one element of the pixel, LUT or
rescale modules deleted, truncated, garbled or given the wrong value representation.

Seeded, so a failing case is reproduced by its name.
"""
from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .ingest_samples import dicom_bytes, hand_stored_values

# Elements the display pipeline reads: the image pixel module, the modality LUT (rescale) module and
# the VOI LUT module.
PIXEL_MODULE = (
    "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel",
    "PhotometricInterpretation", "NumberOfFrames", "PixelData",
)
RESCALE_MODULE = ("RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence")
LUT_MODULE = ("WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence")
TARGETS = PIXEL_MODULE + RESCALE_MODULE + LUT_MODULE
KINDS = ("delete", "truncate", "garble", "wrong_vr")
# A value representation that does not fit, for each kind of value the targets hold.
_WRONG_VR = {"US": "DS", "IS": "OB", "DS": "OB", "CS": "US", "LO": "SQ", "SQ": "LO", "OB": "DS", "OW": "CS", "SS": "LO"}


@dataclass(frozen=True)
class Mutant:
    name: str  # source, element, kind: enough to reproduce it
    data: bytes


def source_files() -> dict[str, bytes]:
    """Valid files: the project's own DX (windowed, rescaled, MONOCHROME1) and pydicom's samples
    with a modality LUT, a VOI LUT, a CT rescale and an MR."""
    stored, _ = hand_stored_values(height=40, width=32)
    project = dicom_bytes(stored)
    sources = {"project_dx": project}
    # The bundled samples carry no LUT sequences: the project's file gains a valid VOI LUT and a
    # valid Modality LUT, so that damage to them meets a pipeline that would otherwise use them.
    for keyword in ("VOILUTSequence", "ModalityLUTSequence"):
        ds = dcmread(io.BytesIO(project))
        item = Dataset()
        item.LUTDescriptor = [4096, 0, 12] if keyword == "VOILUTSequence" else [4096, 0, 16]
        item.LUTData = (np.arange(4096, dtype="<u2") * (1 if keyword == "VOILUTSequence" else 16)).tobytes()
        if keyword == "ModalityLUTSequence":
            item.ModalityLUTType = "US"
            del ds.RescaleSlope, ds.RescaleIntercept, ds.WindowCenter, ds.WindowWidth
        setattr(ds, keyword, Sequence([item]))
        sources[f"project_dx_{keyword}"] = _write(ds)
    for name in ("CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm"):
        path = get_testdata_file(name, download=False)
        if path is not None:
            sources[name.removesuffix(".dcm")] = open(path, "rb").read()
    return sources


def _write(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue()


def _raw_value(ds: Dataset, keyword: str) -> bytes:
    """The element's value as it would be written, or a few bytes where it has none."""
    element = ds[keyword]
    if element.VR == "SQ":
        return b"\x00\x01\x02\x03"
    value = element.value
    if isinstance(value, bytes):
        return value
    return str(value).encode("ascii", "replace") or b"0"


def _mutate(ds: Dataset, keyword: str, kind: str, rng: random.Random) -> bool:
    """Apply one damage in place; False where it does not apply to this file."""
    if keyword not in ds:
        if kind != "wrong_vr":
            return False
        # An element the file lacks, added with nonsense: still damage the pipeline must survive.
        ds.add(DataElement(keyword_tag(keyword), "OB", bytes(rng.randrange(256) for _ in range(3))))
        return True
    element = ds[keyword]
    tag = element.tag
    if kind == "delete":
        del ds[keyword]
        if keyword == "VOILUTSequence" or keyword == "ModalityLUTSequence":
            return True
        return True
    if kind == "truncate":
        if element.VR == "SQ":
            items = list(element.value)
            if not items:
                return False
            item = items[0]
            # An item that lost its tail: LUT Data, then the descriptor's last values.
            if "LUTData" in item:
                del item.LUTData
            elif "LUTDescriptor" in item:
                del item.LUTDescriptor
            else:
                element.value = Sequence([Dataset()])
            return True
        raw = _raw_value(ds, keyword)
        ds[tag] = DataElement(tag, "UN", raw[: max(0, len(raw) // 2)])
        return True
    if kind == "garble":
        if element.VR == "SQ":
            item = Dataset()
            choice = rng.randrange(3)
            if choice == 0:
                item.LUTDescriptor = [rng.randrange(0, 70000), rng.randrange(-5, 70000), rng.choice([0, 1, 7, 17, 99])]
                item.LUTData = bytes(rng.randrange(256) for _ in range(2 * rng.randrange(1, 8)))
            elif choice == 1:
                item.LUTDescriptor = [4096, 0, 12]
            element.value = Sequence([item])  # choice 2: an empty item
            return True
        raw = _raw_value(ds, keyword)
        garbage = bytes(rng.randrange(256) for _ in range(max(1, len(raw) if len(raw) < 64 else 64)))
        if keyword == "PixelData":
            garbage = raw[: rng.randrange(1, max(2, len(raw)))] + garbage
        ds[tag] = DataElement(tag, "UN", garbage)
        return True
    if kind == "wrong_vr":
        vr = _WRONG_VR.get(element.VR, "OB")
        if vr == "SQ":
            ds[tag] = DataElement(tag, "SQ", Sequence([Dataset()]))
        elif vr in ("OB", "UN"):
            ds[tag] = DataElement(tag, vr, b"abc")
        elif vr in ("US", "SS"):
            ds[tag] = DataElement(tag, vr, rng.randrange(0, 65535))
        else:
            ds[tag] = DataElement(tag, vr, rng.choice(["abc", "1e999", "nan", "-0", "99", "\\\\", "1\\2\\x"]))
        return True
    raise ValueError(kind)


def keyword_tag(keyword: str):
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(keyword)


def mutants(count: int, *, seed: int = 0) -> Iterator[Mutant]:
    """`count` damaged files, cycling through every source, element and kind before repeating,
    plus byte-level damage (truncated files, flipped header bytes) for one case in five."""
    rng = random.Random(seed)
    sources = source_files()
    plan = [(source, keyword, kind) for source in sources for keyword in TARGETS for kind in KINDS]
    rng.shuffle(plan)
    made = 0
    index = 0
    while made < count:
        if index % 5 == 4:
            source = rng.choice(sorted(sources))
            data = bytearray(sources[source])
            if rng.random() < 0.5:
                cut = rng.randrange(132, len(data))
                yield Mutant(f"{source}:bytes:truncate@{cut}", bytes(data[:cut]))
            else:
                offsets = [rng.randrange(132, min(len(data), 2048)) for _ in range(rng.randrange(1, 6))]
                for offset in offsets:
                    data[offset] = rng.randrange(256)
                yield Mutant(f"{source}:bytes:flip@{','.join(map(str, offsets))}", bytes(data))
            made += 1
            index += 1
            continue
        source, keyword, kind = plan[(index - index // 5) % len(plan)]
        index += 1
        try:
            ds = dcmread(io.BytesIO(sources[source]), force=True)
            if not _mutate(ds, keyword, kind, rng):
                continue
            data = _write(ds)
        except Exception:
            continue  # pydicom cannot even make or write this damage; no file can carry it
        yield Mutant(f"{source}:{keyword}:{kind}", data)
        made += 1
