"""Decode and check one incoming image file (PNG, JPEG, TIFF or DICOM) and de-identify DICOM.

Pure: bytes in, pixels and a whitelist of technical facts out; no ORM, no settings, no logging of
values. Every refusal is an `ImageRefused` whose message an operator can act on.

What is stored is always a new grayscale PNG (8-bit for 8-bit sources, 16-bit otherwise): one
format for the viewer and the model, and no container metadata (EXIF, TIFF tags, PNG text, DICOM
headers) can ride along into the media folder.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = ("PNG", "JPEG", "TIFF")
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff") + DICOM_SUFFIXES

# Colour: JPEG chroma noise on a grey image stays within a few levels, so a pixel counts as
# coloured only when its channels differ by more than this (of 255).
COLOUR_CHROMA_THRESHOLD = 24
# Up to this share of coloured pixels is a radiograph with coloured marks (a ruler, a burned-in
# annotation): it is kept in grey with a warning. Above it the file is taken for a photograph.
COLOUR_MARKS_MAX_FRACTION = 0.02

# Technical DICOM attributes worth keeping (acquisition geometry, pixel encoding, scanner model for
# domain-shift analysis). Everything else, including every name, identifier, date, UID, address,
# free-text description and private tag, is dropped.
DICOM_WHITELIST = (
    "Modality",
    "BodyPartExamined",
    "ViewPosition",
    "ImageLaterality",
    "Laterality",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "KVP",
    "Manufacturer",
    "ManufacturerModelName",
)


class ImageRefused(Exception):
    """The file cannot become a radiograph; the message says why, in the operator's terms."""


@dataclass(frozen=True, repr=False)
class DicomIdentity:
    """Identifying values read from a DICOM header, held in memory only.

    They feed the pseudonym, the date shift and the operator's mapping file, and are never stored.
    `repr` is redacted so that a traceback or a debugger print does not show them.
    """

    patient_id: str | None = None
    study_date: dt.date | None = None

    def __repr__(self) -> str:
        return "DicomIdentity(<redacted>)"


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # 2-D uint8 or uint16, bone bright
    source_format: str  # "png", "jpeg", "tiff" or "dicom"
    metadata: dict[str, Any]  # technical facts only: safe to store
    warnings: tuple[str, ...] = ()
    # From the DICOM header where there is one: "L"/"R" and "hand"/"foot", or None.
    laterality: str | None = None
    body_part: str | None = None
    identity: DicomIdentity = field(default_factory=DicomIdentity)

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def pixel_sha256(self) -> str:
        return str(self.metadata["pixel_sha256"])

    @cached_property
    def png(self) -> bytes:
        """What is stored. Encoded on first use: a file found to be a duplicate never pays for it."""
        buffer = io.BytesIO()
        Image.fromarray(self.pixels).save(buffer, format="PNG")
        return buffer.getvalue()


def image_decode(data: bytes, *, name: str, max_pixels: int, allow_colour: bool = False) -> DecodedImage:
    """Decode one file's bytes into a grayscale radiograph, or raise `ImageRefused`."""
    if not data:
        raise ImageRefused("The file is empty (0 bytes).")
    if max_pixels <= 0:
        raise ValueError("max_pixels must be positive")
    if looks_like_dicom(data, name=name):
        return _dicom_decode(data, max_pixels=max_pixels, allow_colour=allow_colour)
    return _raster_decode(data, max_pixels=max_pixels, allow_colour=allow_colour)


def looks_like_dicom(data: bytes, *, name: str) -> bool:
    # Part 10 files carry "DICM" after a 128-byte preamble; older files without it are recognised
    # by their suffix only.
    return data[128:132] == b"DICM" or name.lower().endswith(DICOM_SUFFIXES)


# ---------------------------------------------------------------------------------------------
# PNG, JPEG, TIFF
# ---------------------------------------------------------------------------------------------


def _raster_decode(data: bytes, *, max_pixels: int, allow_colour: bool) -> DecodedImage:
    # Pillow's own guard refuses at open() what exceeds twice its limit; setting it to the same
    # value as the explicit check below makes both agree. Every call sets the same configured
    # value, so concurrent requests do not race on it.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            # Between the limit and twice it Pillow only warns; the explicit check below refuses.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
        with probe:
            _check_size(probe.width, probe.height, max_pixels)
            frames = getattr(probe, "n_frames", 1)
            if frames > 1:
                raise ImageRefused(f"The file holds {frames} images; import one radiograph per file.")
            probe.verify()  # checksums and chunk structure, before any pixel is decoded
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
        with image:
            image.load()
            source_format = image.format.lower()
            image = ImageOps.exif_transpose(image)
    except ImageRefused:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow refuses at open() an image over twice its limit; its message holds the pixel count.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageRefused(_too_large_message(None, None, max_pixels, pixels=int(found[1]) if found else None)) from None
    except UnidentifiedImageError:
        raise ImageRefused("This is not a PNG, JPEG, TIFF or DICOM image.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncation and corruption as OSError or SyntaxError with a short reason.
        raise ImageRefused(f"The image is truncated or corrupt ({_short(exc)}).") from None

    notes: list[str] = []
    pixels = _grey_pixels(image, allow_colour=allow_colour, notes=notes)
    metadata = {"source_format": source_format, "source_mode": image.mode}
    return _finish(pixels, source_format=source_format, metadata=metadata, notes=notes)


def _grey_pixels(image: Image.Image, *, allow_colour: bool, notes: list[str]) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image).astype(np.uint16)
    if mode == "I":
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise ImageRefused("Pixel values fall outside the 16-bit range; export the image as 8- or 16-bit grey.")
        return values.astype(np.uint16)
    if mode == "L":
        return np.asarray(image, dtype=np.uint8)
    if mode in ("LA", "La"):
        if np.asarray(image.getchannel("A")).min() < 255:
            notes.append("Transparency was dropped.")
        return np.asarray(image.getchannel("L"), dtype=np.uint8)
    if mode in ("RGB", "RGBA", "RGBa", "P", "PA", "CMYK", "YCbCr"):
        if "A" in image.getbands() and np.asarray(image.getchannel("A")).min() < 255:
            notes.append("Transparency was dropped.")
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
        return _grey_from_rgb(rgb, allow_colour=allow_colour, notes=notes)
    raise ImageRefused(f"Pixel format '{mode}' is not supported; export the image as 8- or 16-bit grey.")


def _grey_from_rgb(rgb: np.ndarray, *, allow_colour: bool, notes: list[str]) -> np.ndarray:
    """Grey from RGB; a colour photograph is refused unless the operator allows it."""
    chroma = rgb.max(axis=-1) - rgb.min(axis=-1)
    coloured = float((chroma > COLOUR_CHROMA_THRESHOLD).mean())
    grey = np.rint(rgb @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)
    if coloured == 0.0:
        return grey  # a grey radiograph saved as RGB, as many exports are
    percent = f"{coloured * 100:.1f}%"
    if coloured <= COLOUR_MARKS_MAX_FRACTION:
        notes.append(f"Coloured marks on {percent} of the pixels were converted to grey.")
        return grey
    if not allow_colour:
        raise ImageRefused(
            f"This looks like a colour photograph, not a radiograph ({percent} of the pixels are coloured). "
            "Convert it to grey first, or allow colour images explicitly."
        )
    notes.append(f"A colour image ({percent} of the pixels coloured) was converted to grey as allowed.")
    return grey


# ---------------------------------------------------------------------------------------------
# DICOM
# ---------------------------------------------------------------------------------------------


def _dicom_decode(data: bytes, *, max_pixels: int, allow_colour: bool) -> DecodedImage:
    import pydicom

    try:
        # pydicom warns about odd values with the value in the text; nothing of a header may reach
        # a log, so those warnings are silenced here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:  # a damaged header fails in many ways, all meaning the same to the operator
        raise ImageRefused(f"The DICOM file is truncated or corrupt ({type(exc).__name__}).") from None

    if "PixelData" not in ds:
        raise ImageRefused("This is not an image: the DICOM file has no pixel data.")
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    except (AttributeError, TypeError, ValueError):
        raise ImageRefused("The DICOM file is corrupt: its image size or pixel format is missing.") from None
    _check_size(columns, rows, max_pixels, frames=frames)
    if frames > 1:
        raise ImageRefused(f"The DICOM file holds {frames} frames; import one radiograph per file.")

    meta = getattr(ds, "file_meta", None)
    transfer_syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if transfer_syntax is not None and transfer_syntax.is_compressed:
        from pydicom.pixels import get_decoder

        decoder = get_decoder(transfer_syntax)
        if decoder is None or not decoder.is_available:
            missing = "; ".join(decoder.missing_dependencies) if decoder is not None else "none known"
            raise ImageRefused(
                f"The DICOM pixels are compressed with {transfer_syntax.name}, and no decoder for it is "
                f"installed here ({missing}). Install one, or send the file uncompressed."
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = ds.pixel_array
    except Exception as exc:  # pixel handlers raise a wide range of types for the same bad input
        if transfer_syntax is not None and transfer_syntax.is_compressed:
            # A decoder may be installed yet not cover this variant (e.g. 12-bit JPEG in Pillow).
            raise ImageRefused(
                f"The DICOM pixels, compressed with {transfer_syntax.name}, cannot be decoded here ({_short(exc)})."
            ) from None
        raise ImageRefused(f"The DICOM pixel data cannot be decoded; it is truncated or corrupt ({_short(exc)}).") from None

    notes: list[str] = []
    if samples > 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        if raw.ndim != 3 or raw.shape[-1] != 3:
            raise ImageRefused(f"DICOM photometric interpretation '{photometric}' is not supported.")
        rgb = _to_8bit(raw).astype(np.int16)
        pixels = _grey_from_rgb(rgb, allow_colour=allow_colour, notes=notes)
        voi = "none (colour source)"
    else:
        if raw.ndim != 2:
            raise ImageRefused(f"The DICOM pixel data has an unexpected shape {raw.shape}.")
        pixels, voi = _dicom_grey(raw, ds)
        if photometric == "MONOCHROME1":
            # MONOCHROME1 shows low values bright; invert so bone is bright like everywhere else.
            pixels = np.uint16(65535) - pixels

    metadata: dict[str, Any] = {
        "source_format": "dicom",
        "dicom": dicom_whitelist(ds),
        "voi": voi,
        "inverted": photometric == "MONOCHROME1",
    }
    if transfer_syntax is not None and transfer_syntax.name != str(transfer_syntax):
        metadata["transfer_syntax"] = transfer_syntax.name  # the standard's name; an unknown UID is left out
    return _finish(
        pixels,
        source_format="dicom",
        metadata=metadata,
        notes=notes,
        laterality=_dicom_laterality(ds),
        body_part=_dicom_body_part(ds),
        identity=DicomIdentity(patient_id=_text(ds.get("PatientID")), study_date=_dicom_date(ds.get("StudyDate"))),
    )


def _dicom_grey(raw: np.ndarray, ds) -> tuple[np.ndarray, str]:
    """Modality LUT (rescale), then the VOI LUT or window, then the full 16-bit range."""
    from pydicom.pixels import apply_modality_lut, apply_voi

    values = apply_modality_lut(raw, ds).astype(np.float64)
    voi_sequence = ds.get("VOILUTSequence")
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if voi_sequence:
        lut_bits = int(voi_sequence[0].LUTDescriptor[2])
        scaled = apply_voi(values, ds, index=0).astype(np.float64) / float(2**lut_bits - 1)
        voi = "VOI LUT"
    elif center is not None and width is not None and width > 0:
        function = str(ds.get("VOILUTFunction", "LINEAR")).upper()
        scaled = _window(values, center=center, width=width, function=function)
        voi = f"window {function.lower()} center {center:g} width {width:g}"
    else:
        low, high = float(values.min()), float(values.max())
        if high <= low:
            raise ImageRefused("The image is blank: every pixel has the same value.")
        scaled = (values - low) / (high - low)
        voi = "full range (no window in the file)"
    pixels = np.rint(np.clip(scaled, 0.0, 1.0) * 65535.0).astype(np.uint16)
    return pixels, voi


def _window(values: np.ndarray, *, center: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2/3, into [0, 1]."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return (values - center) / width + 0.5
    if width <= 1:
        return (values >= center).astype(np.float64)
    return (values - (center - 0.5)) / (width - 1) + 0.5


def dicom_whitelist(ds) -> dict[str, Any]:
    """The technical attributes of `DICOM_WHITELIST` that the file has, as JSON values."""
    kept: dict[str, Any] = {}
    for keyword in DICOM_WHITELIST:
        element = ds.get(keyword)
        if element is None or element == "":
            continue
        value = _json_value(element)
        if value is not None:
            kept[keyword] = value
    return kept


def _json_value(value: Any) -> Any:
    from pydicom.multival import MultiValue

    if isinstance(value, (list, tuple, MultiValue)):
        items = [_json_value(item) for item in value]
        return [item for item in items if item is not None]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (str, bytes)):
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        return text.strip()[:64] or None
    return None


def _dicom_laterality(ds) -> str | None:
    for keyword in ("ImageLaterality", "Laterality"):
        value = str(ds.get(keyword, "") or "").strip().upper()
        if value in ("L", "R"):
            return value
    return None


def _dicom_body_part(ds) -> str | None:
    value = str(ds.get("BodyPartExamined", "") or "").strip().upper()
    if value in ("HAND", "WRIST", "FINGER"):
        return "hand"
    if value in ("FOOT", "TOE", "FOREFOOT"):
        return "foot"
    return None


def _dicom_date(value: Any) -> dt.date | None:
    text = str(value or "").strip()
    try:
        return dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    text = str(value or "").strip()
    return text or None


def _first(value: Any) -> float | None:
    """The first of a multi-valued number (Window Center may list several views), as a float."""
    from pydicom.multival import MultiValue

    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _to_8bit(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.uint8:
        return values
    high = float(values.max()) or 1.0
    return np.rint(values.astype(np.float64) / high * 255.0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Shared
# ---------------------------------------------------------------------------------------------


def _check_size(width: int, height: int, max_pixels: int, *, frames: int = 1) -> None:
    if width <= 0 or height <= 0:
        raise ImageRefused("The image has no pixels (zero width or height).")
    if width * height * frames > max_pixels:
        raise ImageRefused(_too_large_message(width, height, max_pixels))


def _too_large_message(width: int | None, height: int | None, max_pixels: int, *, pixels: int | None = None) -> str:
    if width and height:
        size = f" ({width} x {height} = {width * height:,} pixels)"
    else:
        size = f" ({pixels:,} pixels)" if pixels else ""
    return f"The image is too large{size}; at most {max_pixels:,} pixels are accepted (MAX_IMAGE_PIXELS)."


def _finish(
    pixels: np.ndarray,
    *,
    source_format: str,
    metadata: dict[str, Any],
    notes: list[str],
    laterality: str | None = None,
    body_part: str | None = None,
    identity: DicomIdentity | None = None,
) -> DecodedImage:
    if pixels.ndim != 2:
        raise ImageRefused("The image is not a single grey plane.")
    if int(pixels.min()) == int(pixels.max()):
        raise ImageRefused("The image is blank: every pixel has the same value.")
    pixels = np.ascontiguousarray(pixels)
    digest = hashlib.sha256(f"{pixels.dtype.str}{pixels.shape}".encode() + pixels.tobytes()).hexdigest()
    metadata = metadata | {"bits": 8 * pixels.dtype.itemsize, "pixel_sha256": digest}
    return DecodedImage(
        pixels=pixels,
        source_format=source_format,
        metadata=metadata,
        warnings=tuple(notes),
        laterality=laterality,
        body_part=body_part,
        identity=identity or DicomIdentity(),
    )


def _short(exc: Exception) -> str:
    """The first clause of a decoder's message: enough to act on, no wall of text."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    text = text.split(" - ")[0].rstrip(". ")
    return text if len(text) <= 200 else text[:197] + "..."


# ---------------------------------------------------------------------------------------------
# Pseudonyms and date shifts
# ---------------------------------------------------------------------------------------------

# Shifted dates fall one to five years earlier than the real ones: far enough to break a link with
# a clinic's calendar, and the same offset for every visit of a patient keeps intervals exact.
DATE_SHIFT_MIN_DAYS = 365
DATE_SHIFT_SPAN_DAYS = 4 * 365


def pseudonym_for(patient_id: str, *, key: str) -> str:
    """A stable pseudonym: a keyed hash of the real identifier, never reversible without the key."""
    digest = hmac.new(key.encode(), b"patient:" + patient_id.strip().encode(), hashlib.sha256).hexdigest()
    return f"P-{digest[:16].upper()}"


def date_shift_days(pseudonym: str, *, key: str) -> int:
    digest = hmac.new(key.encode(), b"date-shift:" + pseudonym.encode(), hashlib.sha256).digest()
    return -(DATE_SHIFT_MIN_DAYS + int.from_bytes(digest[:4], "big") % DATE_SHIFT_SPAN_DAYS)


def date_shift(real: dt.date, *, pseudonym: str, key: str) -> dt.date:
    return real + dt.timedelta(days=date_shift_days(pseudonym, key=key))
