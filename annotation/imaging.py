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
    try:
        if looks_like_dicom(data, name=name):
            return _dicom_decode(data, max_pixels=max_pixels, allow_colour=allow_colour)
        return _raster_decode(data, max_pixels=max_pixels, allow_colour=allow_colour)
    except (ImageRefused, MemoryError):
        raise
    except Exception as exc:
        # The last line of defence: a decoder library failing in a way no branch above foresaw is
        # still a refusal of this one file, not a server error or an aborted folder import. Only the
        # exception's type is named: its text may quote header values.
        raise ImageRefused(f"The file cannot be decoded; it is damaged or uses an unsupported variant ({type(exc).__name__}).") from None


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
    image.close()  # its pixel buffer is as large as `pixels`; release it before hashing and storing
    del image
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

    # pydicom's default is to validate values as they are read and log each invalid one, quoting
    # it: a damaged Patient Name would land in the log. Values are checked here, where needed.
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

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
            named = f" '{photometric}'" if _CODE_STRING.match(photometric) else ""
            raise ImageRefused(f"DICOM photometric interpretation{named} is not supported.")
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
        identity=DicomIdentity(patient_id=_text(_optional(ds, "PatientID")), study_date=_dicom_date(_optional(ds, "StudyDate"))),
    )


def _dicom_grey(raw: np.ndarray, ds) -> tuple[np.ndarray, str]:
    """Modality LUT (rescale), then the VOI LUT or window, then the full 16-bit range."""
    values = _dicom_modality(raw, ds)
    voi_sequence = _dicom_sequence(ds, "VOILUTSequence", "VOI LUT Sequence")
    center, width = _first(_dicom_get(ds, "WindowCenter")), _first(_dicom_get(ds, "WindowWidth"))
    if voi_sequence:
        scaled = _dicom_voi_lut(values, ds, voi_sequence)
        voi = "VOI LUT"
    elif center is not None and width is not None and width > 0:
        function = str(_dicom_get(ds, "VOILUTFunction") or "LINEAR").strip().upper()
        if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
            raise ImageRefused("The DICOM VOI LUT Function is not LINEAR, LINEAR_EXACT or SIGMOID.")
        scaled = _window(values, center=center, width=width, function=function)
        voi = f"window {function.lower()} center {center:g} width {width:g}"
    else:
        low, high = float(values.min()), float(values.max())
        if high <= low:
            raise ImageRefused("The image is blank: every pixel has the same value.")
        scaled = (values - low) / (high - low)
        voi = "full range (no window in the file)"
    if not np.isfinite(scaled).all():
        raise ImageRefused("The DICOM window or VOI LUT gives pixel values that are not numbers.")
    pixels = np.rint(np.clip(scaled, 0.0, 1.0) * 65535.0).astype(np.uint16)
    return pixels, voi


# The display pipeline reads a handful of header modules; each helper below turns a malformed
# element (missing, truncated, garbled, of the wrong VR) into a refusal that names the element and
# never quotes its value, since a garbled element may hold anything.


def _dicom_get(ds, keyword: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ds.get(keyword)
    except Exception:
        raise ImageRefused(f"The DICOM element {keyword} cannot be read; the header is damaged.") from None


def _dicom_sequence(ds, keyword: str, title: str) -> list | None:
    value = _dicom_get(ds, keyword)
    if value is None or value == "" or (isinstance(value, (bytes, list, tuple)) and not value):
        return None
    from pydicom.sequence import Sequence

    if not isinstance(value, Sequence):
        raise ImageRefused(f"The DICOM {title} is not a sequence (wrong value representation).")
    return list(value) or None


def _dicom_number(ds, keyword: str, title: str, *, default: float) -> float:
    value = _dicom_get(ds, keyword)
    if value is None or value == "":
        return default
    if isinstance(value, bytes):
        raise ImageRefused(f"The DICOM {title} has the wrong value representation (raw bytes, not a number).")
    number = _first(value)
    if number is None:
        raise ImageRefused(f"The DICOM {title} is not a number.")
    return number


def _dicom_modality(raw: np.ndarray, ds) -> np.ndarray:
    """The modality LUT (Rescale Slope and Intercept, or a Modality LUT Sequence) as float64."""
    from pydicom.pixels import apply_modality_lut

    slope = _dicom_number(ds, "RescaleSlope", "Rescale Slope", default=1.0)
    _dicom_number(ds, "RescaleIntercept", "Rescale Intercept", default=0.0)
    if slope == 0.0:
        raise ImageRefused("The DICOM Rescale Slope is 0: every pixel would have the same value.")
    sequence = _dicom_sequence(ds, "ModalityLUTSequence", "Modality LUT Sequence")
    if sequence is not None:
        _lut_check(sequence[0], "Modality LUT")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
    except ImageRefused:
        raise
    except Exception as exc:
        raise ImageRefused(
            f"The DICOM modality LUT (rescale) cannot be applied; the header is damaged ({type(exc).__name__})."
        ) from None
    if values.shape != raw.shape or not np.isfinite(values).all():
        raise ImageRefused("The DICOM modality LUT (rescale) gives pixel values that are not numbers.")
    return values


def _lut_check(item, title: str) -> int:
    """The LUT's bits per entry, after checking the item has a usable descriptor and data."""
    try:
        descriptor = [int(value) for value in item.LUTDescriptor]
        has_data = len(item.LUTData) > 0 if "LUTData" in item else False
    except Exception:
        raise ImageRefused(f"The DICOM {title} has no readable LUT Descriptor.") from None
    if len(descriptor) != 3 or not has_data:
        raise ImageRefused(f"The DICOM {title} is incomplete (LUT Descriptor or LUT Data missing).")
    bits = descriptor[2]
    if not 8 <= bits <= 16:
        raise ImageRefused(f"The DICOM {title} has {bits} bits per entry; 8 to 16 are allowed.")
    return bits


def _dicom_voi_lut(values: np.ndarray, ds, sequence: list) -> np.ndarray:
    from pydicom.pixels import apply_voi

    lut_bits = _lut_check(sequence[0], "VOI LUT")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return np.asarray(apply_voi(values, ds, index=0), dtype=np.float64) / float(2**lut_bits - 1)
    except Exception as exc:
        raise ImageRefused(f"The DICOM VOI LUT cannot be applied; the header is damaged ({type(exc).__name__}).") from None


def _window(values: np.ndarray, *, center: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2/3, into [0, 1]."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return (values - center) / width + 0.5
    if width <= 1:
        return (values >= center).astype(np.float64)
    return (values - (center - 0.5)) / (width - 1) + 0.5


# A whitelisted attribute is still a field someone typed into: a scanner's Manufacturer can hold
# "Kowalska^Zofia MRN-88231977". Text is kept only when it looks like what the attribute is for;
# anything else is dropped whole (never trimmed to a part that might still identify).
# Code strings (VR CS): upper-case letters, digits, space and underscore, at most 16 characters.
_CODE_STRING = re.compile(r"^[A-Z0-9_ ]{1,16}$")
# Names of a maker or a model: letters, digits, space and . , - / ( ) & +; no "^" (the separator of
# person names), no "@", and no run of five or more digits (record numbers, dates, phone numbers).
_PRODUCT_TEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .,\-/()&+]{0,63}$")
_LONG_NUMBER = re.compile(r"\d{5,}")
_TEXT_KEYWORDS = {"Manufacturer", "ManufacturerModelName"}


def _safe_text(keyword: str, text: str) -> bool:
    if keyword in _TEXT_KEYWORDS:
        return bool(_PRODUCT_TEXT.match(text)) and not _LONG_NUMBER.search(text)
    return bool(_CODE_STRING.match(text))


def dicom_whitelist(ds) -> dict[str, Any]:
    """The technical attributes of `DICOM_WHITELIST` that the file has, as JSON values.

    A text value that does not match its safe pattern is dropped, as is any value that cannot be
    read; only the keywords of what was dropped are kept, under `dropped`.
    """
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for keyword in DICOM_WHITELIST:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                element = ds.get(keyword)
                if element is None or element == "":
                    continue
                value = _json_value(element)
        except Exception:  # a garbled element: unreadable, so not kept
            dropped.append(keyword)
            continue
        if value is None or value == []:
            continue
        texts = [item for item in (value if isinstance(value, list) else [value]) if isinstance(item, str)]
        if not all(_safe_text(keyword, text) for text in texts):
            dropped.append(keyword)
            continue
        kept[keyword] = value
    if dropped:
        kept["dropped"] = dropped
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
        # JSON has no NaN or infinity; PostgreSQL's jsonb refuses them.
        return float(value) if np.isfinite(value) else None
    if isinstance(value, (str, bytes)):
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        return text.strip() or None
    return None


def _dicom_laterality(ds) -> str | None:
    for keyword in ("ImageLaterality", "Laterality"):
        value = str(_optional(ds, keyword) or "").strip().upper()
        if value in ("L", "R"):
            return value
    return None


def _dicom_body_part(ds) -> str | None:
    value = str(_optional(ds, "BodyPartExamined") or "").strip().upper()
    if value in ("HAND", "WRIST", "FINGER"):
        return "hand"
    if value in ("FOOT", "TOE", "FOREFOOT"):
        return "foot"
    return None


def _optional(ds, keyword: str) -> Any:
    """An element that helps but is not needed: unreadable counts as absent."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ds.get(keyword)
    except Exception:
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
        number = float(value) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        return None
    # NaN and infinity are not numbers a window or a rescale can use.
    return number if number is None or np.isfinite(number) else None


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
    # Hashed in place: `tobytes()` would copy the whole image once more at the peak of the decode.
    hasher = hashlib.sha256(f"{pixels.dtype.str}{pixels.shape}".encode())
    hasher.update(memoryview(pixels).cast("B"))
    digest = hasher.hexdigest()
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
