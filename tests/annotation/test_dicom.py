"""DICOM ingestion: display pipeline (rescale, window, MONOCHROME1), 16 bits, de-identification."""
from __future__ import annotations

import datetime as dt
import io
import logging

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image
from pydicom.data import get_testdata_file

from annotation import ingestion
from annotation.imaging import DICOM_WHITELIST, date_shift_days, image_decode, pseudonym_for
from annotation.models import Patient, Radiograph, Visit
from annotation.sources import FileTarget, file_prepare

from .ingest_samples import (
    IDENTIFYING,
    IDENTIFYING_FORMS,
    STUDY_DATE,
    by_file,
    dicom_bytes,
    hand_stored_values,
    media_files,
    run_import,
)


def _stored_pixels(radiograph: Radiograph) -> np.ndarray:
    with radiograph.image.open("rb") as handle, Image.open(handle) as image:
        assert image.mode == "I;16"
        return np.asarray(image)


def test_monochrome1_is_rescaled_windowed_and_inverted_so_bone_is_bright():
    stored, bone = hand_stored_values()
    decoded = image_decode(dicom_bytes(stored), name="scan.dcm", max_pixels=10_000)

    def expected(raw: int) -> int:
        # Rescale 2x - 100, LINEAR window centre 3400 width 6000, full 16-bit range, then inverted.
        value = raw * 2.0 - 100.0
        scaled = min(max((value - 3399.5) / 5999.0 + 0.5, 0.0), 1.0)
        return 65535 - int(np.rint(scaled * 65535))

    assert decoded.pixels.dtype == np.uint16
    assert int(decoded.pixels[bone][0, 0]) == expected(500) == 60073
    assert int(decoded.pixels[0, 0]) == expected(2000)
    assert decoded.pixels[bone].mean() > 3 * np.delete(decoded.pixels, np.s_[20:60], axis=0).mean()
    # More grey levels than 8 bits hold: the 16-bit depth survives to the stored PNG.
    stored_png = np.asarray(Image.open(io.BytesIO(decoded.png)))
    assert stored_png.dtype == np.uint16 and len(np.unique(stored_png)) > 256
    assert np.array_equal(stored_png, decoded.pixels)
    assert decoded.metadata["voi"] == "window linear center 3400 width 6000" and decoded.metadata["inverted"] is True
    assert decoded.laterality == "L" and decoded.body_part == "hand"


def test_monochrome2_without_a_window_spans_the_full_16_bit_range():
    stored, bone = hand_stored_values()
    decoded = image_decode(
        dicom_bytes(4095 - stored, photometric="MONOCHROME2", center=None, width=None), name="scan.dcm", max_pixels=10_000
    )
    assert int(decoded.pixels.max()) == 65535 and int(decoded.pixels.min()) == 0
    assert int(decoded.pixels[bone][0, 0]) == 65535  # bone was the highest value: brightest
    assert decoded.metadata["voi"] == "full range (no window in the file)"


def test_no_identifying_dicom_value_reaches_the_database_the_media_or_a_log(schemes, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="pydicom")
    folder = tmp_path / "in"
    folder.mkdir()
    stored, _ = hand_stored_values()
    # A name without the pattern: patient, side and body part must come from the header.
    (folder / "IM000001.dcm").write_bytes(dicom_bytes(stored))
    mapping_file = tmp_path / "private" / "mapping.csv"
    mapping_file.parent.mkdir()

    report, failed = run_import(str(folder), "--project", "dicom-study", "--mapping-out", str(mapping_file))

    assert not failed and report["imported"] == 1
    radiograph = Radiograph.objects.select_related("visit__patient").get()
    pseudonym = pseudonym_for(IDENTIFYING["PatientID"], key=ingestion.ingestion_key())
    assert radiograph.visit.patient.pseudonym == pseudonym and pseudonym.startswith("P-")
    assert (radiograph.laterality, radiograph.body_part) == ("L", "hand")
    assert radiograph.visit.acquired_on == STUDY_DATE + dt.timedelta(days=date_shift_days(pseudonym, key=ingestion.ingestion_key()))
    assert radiograph.visit.acquired_on <= STUDY_DATE - dt.timedelta(days=365)
    kept = radiograph.metadata["dicom"]
    assert set(kept) <= set(DICOM_WHITELIST)
    assert kept["Modality"] == "DX" and kept["ImagerPixelSpacing"] == [0.1, 0.1] and kept["BitsStored"] == 12

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    media = media_files(settings.MEDIA_ROOT)
    assert media  # the image is there ...
    for value in IDENTIFYING_FORMS:
        assert value not in dump.getvalue(), value
        assert value not in caplog.text, value
        assert value not in str(report), value
        for name, content in media.items():  # ... and nothing identifying rides along with it
            assert value not in name
            if len(value) >= 6:
                assert value.encode() not in content, (value, name)
    # Only the operator's mapping file links the pseudonym back, and only because it was asked for.
    assert mapping_file.read_text() == f"pseudonym,patient_id\n{pseudonym},{IDENTIFYING['PatientID']}\n"
    assert mapping_file.stat().st_mode & 0o077 == 0


def test_mapping_file_is_refused_inside_the_media_folder(schemes, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "IM1.dcm").write_bytes(dicom_bytes(hand_stored_values()[0]))
    with pytest.raises(CommandError, match="must not be inside MEDIA_ROOT"):
        call_command(
            "import_radiographs", str(folder), "--project", "p", "--mapping-out", str(settings.MEDIA_ROOT / "map.csv"),
            stdout=io.StringIO(),
        )
    assert not Radiograph.objects.exists()


def test_study_dates_are_shifted_by_one_offset_per_patient_so_intervals_survive(schemes, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    stored, _ = hand_stored_values()
    (folder / "a.dcm").write_bytes(dicom_bytes(stored, study_date=dt.date(2019, 3, 15)))
    (folder / "b.dcm").write_bytes(dicom_bytes(stored + 1, study_date=dt.date(2020, 9, 1)))
    (folder / "manifest.csv").write_text("file,timepoint,laterality\na.dcm,m0,L\nb.dcm,m18,L\n")

    report, failed = run_import(str(folder), "--project", "p", "--manifest", str(folder / "manifest.csv"))

    assert not failed and report["imported"] == 2
    visits = {visit.timepoint: visit.acquired_on for visit in Visit.objects.all()}
    assert visits["m18"] - visits["m0"] == dt.date(2020, 9, 1) - dt.date(2019, 3, 15)
    assert visits["m0"] != dt.date(2019, 3, 15)
    assert Patient.objects.count() == 1


def test_pydicom_sample_ct_is_imported_without_its_identifying_values(schemes, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ct.dcm").write_bytes(open(get_testdata_file("CT_small.dcm"), "rb").read())
    # No laterality in this file: the manifest gives the side and leaves the patient to the header.
    (tmp_path / "manifest.csv").write_text("file,laterality\nct.dcm,R\n")

    report, failed = run_import(str(folder), "--project", "ct", "--manifest", str(tmp_path / "manifest.csv"))

    assert not failed and report["imported"] == 1
    radiograph = Radiograph.objects.select_related("visit__patient").get()
    assert radiograph.visit.patient.pseudonym == pseudonym_for("1CT1", key=ingestion.ingestion_key())
    assert (radiograph.width, radiograph.height) == (128, 128)
    assert _stored_pixels(radiograph).max() == 65535
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    media = b"".join(media_files(settings.MEDIA_ROOT).values())
    for value in ["CompressedSamples^CT1", "1CT1", "ABCD1234", "1234ABCD", "JFK IMAGING CENTER", "CT01_OC0",
                  "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322", "20040119", "2004-01-19", "19970430"]:
        assert value not in dump.getvalue(), value
        assert value not in caplog.text, value
        assert value.encode() not in media, value


def test_compressed_dicom_without_a_decoder_fails_with_a_clear_message(schemes, tmp_path):
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here, so this file decodes")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "MR1-LH.dcm").write_bytes(open(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"), "rb").read())
    (folder / "MR2-RH.dcm").write_bytes(open(get_testdata_file("MR_small.dcm"), "rb").read())

    report, failed = run_import(str(folder), "--project", "p")

    files = by_file(report)
    assert failed and report["imported"] == 1 and report["failed"] == 1
    assert files["MR1-LH.dcm"]["reason"].startswith(
        "The DICOM pixels are compressed with JPEG-LS Lossless Image Compression, and no decoder for it is installed here"
    )
    assert files["MR2-RH.dcm"]["status"] == "imported"  # one file's failure does not stop the others


def test_jpeg2000_dicom_is_decoded_and_is_the_same_radiograph_as_its_uncompressed_copy(schemes, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "MR1-LH.dcm").write_bytes(open(get_testdata_file("MR_small.dcm"), "rb").read())
    (folder / "MR1_copy-LH.dcm").write_bytes(open(get_testdata_file("MR_small_jp2klossless.dcm"), "rb").read())

    report, failed = run_import(str(folder), "--project", "p")

    files = by_file(report)
    assert not failed
    assert files["MR1-LH.dcm"]["status"] == "imported"
    assert files["MR1_copy-LH.dcm"]["status"] == "skipped"
    assert files["MR1_copy-LH.dcm"]["reason"].startswith(f"Already imported as radiograph #{files['MR1-LH.dcm']['radiograph']}")
    assert Radiograph.objects.count() == 1


def test_truncated_dicom_is_refused_and_nothing_is_stored(schemes, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    data = dicom_bytes(hand_stored_values()[0])
    (folder / "P1-LH.dcm").write_bytes(data[: len(data) * 2 // 3])

    report, failed = run_import(str(folder), "--project", "p")

    assert failed
    assert by_file(report)["P1-LH.dcm"]["reason"].startswith("The DICOM pixel data cannot be decoded; it is truncated or corrupt")
    assert not Radiograph.objects.exists() and media_files(settings.MEDIA_ROOT) == {}


def test_a_patient_named_by_the_real_patient_id_is_refused(schemes, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "MRN-123456-LH.dcm").write_bytes(dicom_bytes(hand_stored_values()[0]))

    report, failed = run_import(str(folder), "--project", "p")

    assert failed
    assert by_file(report)["MRN-123456-LH.dcm"]["reason"].startswith("The patient given for this file is the DICOM Patient ID itself")
    assert not Patient.objects.exists()


def test_a_failure_after_the_file_is_written_leaves_no_row_and_no_file(schemes, monkeypatch):
    project, _ = ingestion.project_ensure(slug="p")
    prepared = file_prepare(
        name="IM1.dcm", data=dicom_bytes(hand_stored_values()[0]), declared=FileTarget(), max_pixels=10_000,
        key=ingestion.ingestion_key(),
    )

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    # The acquisition date is written after the image file: the last step of the transaction.
    monkeypatch.setattr(ingestion, "_visit_date_set", broken)
    with pytest.raises(RuntimeError):
        ingestion.radiograph_ingest(project=project, prepared=prepared)

    assert not Radiograph.objects.exists() and not Patient.objects.exists()
    assert media_files(settings.MEDIA_ROOT) == {}
