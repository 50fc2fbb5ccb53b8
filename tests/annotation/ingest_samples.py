"""Files for the ingestion tests: phantom radiographs as PNG/JPEG, a DICOM with identifying tags."""
from __future__ import annotations

import datetime as dt
import io
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from modeling.ml.phantoms import PhantomConfig, generate_patient

SMALL = PhantomConfig(width=128, height=160)

# Every identifying value of `dicom_bytes`; none may appear in the database, the media or a log.
IDENTIFYING = {
    "PatientName": "DOE^JANE",
    "PatientID": "MRN-123456",
    "PatientBirthDate": "19610203",
    "PatientAddress": "12 Elm Street, Springfield",
    "InstitutionName": "Saint Example Hospital",
    "InstitutionAddress": "1 Hospital Road, Springfield",
    "ReferringPhysicianName": "HOUSE^GREGORY",
    "PerformingPhysicianName": "CUDDY^LISA",
    "OperatorsName": "WILSON^JAMES",
    "AccessionNumber": "ACC-998877",
    "StudyID": "STUDY-4242",
    "StudyDescription": "HANDS PA JANE DOE FOLLOW UP",
    "StationName": "XRAY-ROOM-7",
    "DeviceSerialNumber": "SN-7734-XYZ",
    "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.1001",
    "SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.1002",
    "SOPInstanceUID": "1.2.826.0.1.3680043.8.498.1003",
}
STUDY_DATE = dt.date(2019, 3, 15)
# Value forms a date could take on its way into a dump or a file name.
IDENTIFYING_FORMS = [*IDENTIFYING.values(), "DOE", "JANE", "123456", "1961-02-03", "2019-03-15", "20190315", "PRIVATE-NAME-VALUE"]


@lru_cache(maxsize=16)
def phantom_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    left, right = generate_patient(seed, config=SMALL)
    return left.image, right.image


def png16_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def to_8bit(pixels: np.ndarray) -> np.ndarray:
    return (pixels >> 8).astype(np.uint8)


def jpeg_bytes(pixels8: np.ndarray, *, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels8).convert(mode).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def radiograph_png(seed: int, side: str = "L") -> bytes:
    left, right = phantom_pair(seed)
    return png16_bytes(left if side == "L" else right)


def dicom_bytes(
    stored: np.ndarray,
    *,
    photometric: str = "MONOCHROME1",
    slope: float = 2.0,
    intercept: float = -100.0,
    center: float | None = 3400.0,
    width: float | None = 6000.0,
    patient_id: str = IDENTIFYING["PatientID"],
    study_date: dt.date = STUDY_DATE,
    laterality: str | None = "L",
    body_part: str = "HAND",
) -> bytes:
    """An uncompressed DX file full of identifying tags; `stored` are the raw 12-bit values."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image, for presentation
    meta.MediaStorageSOPInstanceUID = IDENTIFYING["SOPInstanceUID"]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    for keyword, value in IDENTIFYING.items():
        setattr(ds, keyword, value)
    ds.PatientID = patient_id
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.StudyDate = study_date.strftime("%Y%m%d")
    ds.StudyTime = "101500"
    ds.OtherPatientIDs = "OLD-MRN-554433"
    # A private tag: kept out because it is not on the whitelist, whatever it holds.
    ds.add_new((0x0011, 0x0010), "LO", "ACME PRIVATE")
    ds.add_new((0x0011, 0x1001), "LO", "PRIVATE-NAME-VALUE")
    ds.Modality = "DX"
    ds.BodyPartExamined = body_part
    if laterality:
        ds.ImageLaterality = laterality
    ds.ViewPosition = "PA"
    ds.Manufacturer = "ACME Imaging"
    ds.ManufacturerModelName = "DX-1"
    ds.ImagerPixelSpacing = [0.1, 0.1]
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if center is not None and width is not None:
        ds.WindowCenter, ds.WindowWidth = center, width
    ds.PixelData = stored.astype("<u2").tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def hand_stored_values(height: int = 80, width: int = 64) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Raw MONOCHROME1 values: a graded background (high, dark) and a 'bone' block (low, bright)."""
    background = 2000 + (np.arange(height * width) % 1500).reshape(height, width)
    bone = (slice(20, 60), slice(24, 40))
    stored = background.astype(np.uint16)
    stored[bone] = 500
    return stored, bone


def media_files(root) -> dict[str, bytes]:
    root = Path(root)
    if not root.exists():
        return {}
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def run_import(*args: str) -> tuple[dict, bool]:
    """`import_radiographs ... --json`; returns (report, whether the command exited with an error)."""
    out = io.StringIO()
    failed = False
    try:
        call_command("import_radiographs", *args, "--json", stdout=out)
    except CommandError:
        failed = True
    return json.loads(out.getvalue()), failed


def by_file(report: dict) -> dict[str, dict]:
    return {item["file"]: item for item in report["files"]}
