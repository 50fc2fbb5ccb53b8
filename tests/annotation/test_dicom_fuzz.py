"""Malformed DICOM headers: refused by name, never a server error, never an aborted or half-done import.

The fuzz test mutates valid files (the project's own DX and pydicom's samples) in the pixel, LUT and
rescale modules. `DICOM_FUZZ_CASES` sets its size (small by default, so the suite stays quick):

    DICOM_FUZZ_CASES=2000 .venv/bin/python -m pytest tests/annotation/test_dicom_fuzz.py -s -k fuzz
"""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from annotation.imaging import ImageRefused, image_decode
from annotation.models import Patient, Radiograph, Visit
from tests.conftest import client_for

from .dicom_mutations import mutants
from .ingest_samples import by_file, dicom_bytes, hand_stored_values, media_files, run_import

FUZZ_CASES = int(os.environ.get("DICOM_FUZZ_CASES", "120"))


def _damaged(change) -> bytes:
    ds = dcmread(io.BytesIO(dicom_bytes(hand_stored_values()[0])))
    change(ds)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _empty_voi_lut_item(ds):
    ds.VOILUTSequence = Sequence([Dataset()])


def _lut_with_99_bits(ds):
    item = Dataset()
    item.LUTDescriptor = [4, 0, 99]
    item.LUTData = np.array([0, 1000, 2000, 3000], dtype="<u2").tobytes()
    ds.VOILUTSequence = Sequence([item])


def _rescale_slope_of_raw_bytes(ds):
    ds[0x00281053] = DataElement(0x00281053, "OB", b"abc")


# The three headers a probe of the upload found; each answered 500 and stopped a folder import.
MALFORMED = {
    "empty-voi-lut-item": (_empty_voi_lut_item, "The DICOM VOI LUT has no readable LUT Descriptor."),
    "lut-99-bits": (_lut_with_99_bits, "The DICOM VOI LUT has 99 bits per entry; 8 to 16 are allowed."),
    "slope-raw-bytes": (_rescale_slope_of_raw_bytes, "The DICOM Rescale Slope has the wrong value representation (raw bytes, not a number)."),
}


def _upload(user, project, *files):
    return client_for(user).post(
        reverse("api-radiograph-upload", args=[project.pk]),
        {"files": [SimpleUploadedFile(name, content) for name, content in files]},
        format="multipart",
    )


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_lut_or_rescale_header_gets_400_naming_the_file_and_the_reason(world, case):
    change, reason = MALFORMED[case]
    before = Radiograph.objects.count(), media_files(settings.MEDIA_ROOT)

    response = _upload(world.users["lead"], world.alpha, ("NEW-07-LH.dcm", _damaged(change)))

    assert response.status_code == 400, response.content[:300]
    assert response.json() == {"files": {"NEW-07-LH.dcm": [reason]}}
    assert (Radiograph.objects.count(), media_files(settings.MEDIA_ROOT)) == before


def test_a_folder_import_reports_each_malformed_header_and_imports_the_files_after_it(schemes, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    stored, _ = hand_stored_values()
    for index, case in enumerate(sorted(MALFORMED)):
        (folder / f"A{index}-LH.dcm").write_bytes(_damaged(MALFORMED[case][0]))
    # Sorted after the damaged ones: an import that stopped at the first would never reach it.
    (folder / "Z9-LH.dcm").write_bytes(dicom_bytes(stored + 7))

    report, failed = run_import(str(folder), "--project", "p")

    files = by_file(report)
    assert failed  # the exit status still says something failed ...
    assert (report["imported"], report["failed"]) == (1, 3)  # ... after every file had its turn
    assert [files[f"A{index}-LH.dcm"]["reason"] for index, case in enumerate(sorted(MALFORMED))] == [
        MALFORMED[case][1] for case in sorted(MALFORMED)
    ]
    assert files["Z9-LH.dcm"]["status"] == "imported"
    assert Radiograph.objects.count() == 1 and len(media_files(settings.MEDIA_ROOT)) == 1


def test_dicom_fuzz_finds_no_crash_no_aborted_import_and_nothing_half_stored(world, tmp_path):
    cases = list(mutants(FUZZ_CASES, seed=17))
    assert len(cases) == FUZZ_CASES

    # 1. The decoder: every damaged file either decodes or is refused with a message.
    decoded = refused = 0
    for case in cases:
        try:
            image_decode(case.data, name="x.dcm", max_pixels=settings.MAX_IMAGE_PIXELS)
            decoded += 1
        except ImageRefused as refusal:
            assert str(refusal).strip(), case.name
            refused += 1

    # 2. A folder import of all of them: every file reported, the import never aborted.
    folder = tmp_path / "fuzz"
    folder.mkdir()
    names = {f"F{index:05d}-{'LH' if index % 2 else 'RH'}.dcm": case.name for index, case in enumerate(cases)}
    for (name, _), case in zip(names.items(), cases):
        (folder / name).write_bytes(case.data)
    report, _ = run_import(str(folder), "--project", "fuzz")
    statuses = {item["file"]: item["status"] for item in report["files"]}
    assert set(statuses) == set(names)
    for item in report["files"]:
        assert item["status"] in ("imported", "skipped", "failed"), item
        if item["status"] == "failed":
            assert item["reason"].strip(), names[item["file"]]
            # An unforeseen failure is reported as such; the decoder must name every damage it meets.
            assert "could not be" not in item["reason"], (names[item["file"]], item["reason"])
    # Nothing half-stored: each imported file is one radiograph with one image file, and nothing else.
    imported = [item["radiograph"] for item in report["files"] if item["status"] == "imported"]
    stored = Radiograph.objects.filter(project__slug="fuzz")
    assert sorted(stored.values_list("pk", flat=True)) == sorted(imported)
    media = media_files(settings.MEDIA_ROOT)
    assert len(media) == len(set(imported)) + Radiograph.objects.exclude(project__slug="fuzz").count()
    for radiograph in stored:
        assert radiograph.image.name in media and radiograph.width > 0
    assert not Patient.objects.filter(visits__isnull=True).exists()
    assert not Visit.objects.filter(radiographs__isnull=True).exists()

    # 3. The upload API, one file a request: 200, 201 or a 400 naming the file, never a 500.
    server_errors = 0
    answers: dict[int, int] = {}
    client = client_for(world.users["lead"])
    for index, case in enumerate(cases[: max(10, FUZZ_CASES // 4)]):
        name = f"U{index:05d}-LH.dcm"
        response = client.post(
            reverse("api-radiograph-upload", args=[world.alpha.pk]), {"files": [SimpleUploadedFile(name, case.data)]}, format="multipart"
        )
        answers[response.status_code] = answers.get(response.status_code, 0) + 1
        server_errors += response.status_code >= 500
        assert response.status_code in (200, 201, 400), (case.name, response.status_code)
        if response.status_code == 400:
            assert list(response.json()["files"]) == [name], case.name

    counts = report["imported"], report["skipped"], report["failed"]
    print(
        f"\nDICOM fuzz: {len(cases)} damaged files; decoder: {decoded} decoded, {refused} refused; "
        f"folder import: {counts[0]} imported, {counts[1]} skipped, {counts[2]} failed, 0 aborted; "
        f"upload API: {sum(answers.values())} requests, answers {dict(sorted(answers.items()))}, {server_errors} server errors"
    )
    assert server_errors == 0
    assert refused > 0 and counts[2] > 0  # the damage is real: most files must be refused
