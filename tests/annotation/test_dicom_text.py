"""Kept DICOM text attributes: technical values pass a safe pattern or are dropped whole."""
from __future__ import annotations

import io

from pydicom import dcmread

from annotation.imaging import dicom_whitelist, image_decode
from annotation.models import Radiograph

from .ingest_samples import dicom_bytes, hand_stored_values, run_import


def _with(**values) -> bytes:
    ds = dcmread(io.BytesIO(dicom_bytes(hand_stored_values()[0])))
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_person_and_a_record_number_in_manufacturer_are_dropped_and_the_drop_is_noted(schemes, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "IM1.dcm").write_bytes(_with(Manufacturer="Kowalska^Zofia MRN-88231977", ManufacturerModelName="DX-1 (rev. 2)"))

    report, failed = run_import(str(folder), "--project", "p")

    assert not failed and report["imported"] == 1
    kept = Radiograph.objects.get().metadata["dicom"]
    assert "Manufacturer" not in kept and kept["dropped"] == ["Manufacturer"]
    assert kept["ManufacturerModelName"] == "DX-1 (rev. 2)"  # an ordinary model name is kept
    assert "Kowalska" not in str(Radiograph.objects.get().metadata) and "88231977" not in str(Radiograph.objects.get().metadata)


def test_code_strings_outside_the_dicom_code_pattern_are_dropped():
    kept = dicom_whitelist(
        dcmread(io.BytesIO(_with(BodyPartExamined="HAND", ViewPosition="pa by J. Smith", Modality="DX")))
    )
    assert kept["BodyPartExamined"] == "HAND" and kept["Modality"] == "DX"
    assert "ViewPosition" not in kept and kept["dropped"] == ["ViewPosition"]


def test_a_nul_character_in_a_kept_attribute_is_dropped_rather_than_breaking_the_store():
    decoded = image_decode(_with(Manufacturer="ACME\x00Imaging"), name="x.dcm", max_pixels=10_000)
    assert "Manufacturer" not in decoded.metadata["dicom"] and decoded.metadata["dicom"]["dropped"] == ["Manufacturer"]


def test_makers_with_ordinary_names_are_kept_whole():
    for name in ("ACME Imaging", "Siemens Healthineers", "FUJIFILM Corporation", "Agfa-Gevaert N.V.", "Carestream Health, Inc."):
        assert dicom_whitelist(dcmread(io.BytesIO(_with(Manufacturer=name))))["Manufacturer"] == name
