"""Importing radiograph files: names, manifests, idempotency, refusals that store nothing, upload API.

Upload permissions follow the personas of tests/conftest.py: the lead of alpha and staff may add
radiographs to alpha; its readers are told 403; other_lead and outsider do not see alpha (404).
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from PIL import Image

from annotation.models import Project, Radiograph, Visit
from annotation.sources import FileTarget, target_from_filename

from ..conftest import client_for
from .ingest_samples import (
    by_file,
    jpeg_bytes,
    media_files,
    phantom_pair,
    png16_bytes,
    radiograph_png,
    run_import,
    to_8bit,
)


def _stored(radiograph: Radiograph) -> Image.Image:
    with radiograph.image.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
        return image


def _png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes whose header announces a huge image: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _colour_photograph() -> bytes:
    hue = np.linspace(0, 255, 128, dtype=np.uint8)
    rgb = np.stack([np.tile(hue, (160, 1)), np.tile(hue[::-1], (160, 1)), np.full((160, 128), 90, np.uint8)], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _with_red_ruler(pixels8: np.ndarray) -> bytes:
    rgb = np.repeat(pixels8[..., None], 3, axis=-1)
    rgb[150:154, 10:60] = (255, 0, 0)  # 200 of 20,480 pixels: a burned-in marker
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("UAB001-LH.jpg", FileTarget("UAB001", None, "L", "hand")),
        ("P-017_m12-RF.dcm", FileTarget("P-017", "m12", "R", "foot")),
        ("sub/dir/A.1_v2.0-lf.TIFF", FileTarget("A.1", "v2.0", "L", "foot")),
        ("a_b_c-LH.png", None),  # the patient has no underscore
        ("UAB001-LH.gif", None),
        ("UAB001-XH.png", None),
        ("scan 0001.png", None),
    ],
)
def test_the_file_name_pattern(name, expected):
    assert target_from_filename(name) == expected


def test_patient_visit_and_side_come_from_the_file_name(schemes, tmp_path):
    left, right = phantom_pair(1)
    (tmp_path / "UAB001-LH.png").write_bytes(png16_bytes(left))
    (tmp_path / "UAB001_m12-RH.png").write_bytes(png16_bytes(right))
    (tmp_path / "feet").mkdir()
    (tmp_path / "feet" / "UAB002-lf.JPG").write_bytes(jpeg_bytes(to_8bit(left[:, ::-1])))

    report, failed = run_import(str(tmp_path), "--project", "new-study")

    assert not failed and (report["imported"], report["skipped"], report["failed"]) == (3, 0, 0)
    assert Project.objects.get(slug="new-study").scheme.key == "svdh"
    rows = {
        (r.visit.patient.pseudonym, r.visit.timepoint, r.body_part, r.laterality): r
        for r in Radiograph.objects.select_related("visit__patient")
    }
    assert set(rows) == {("UAB001", "baseline", "hand", "L"), ("UAB001", "m12", "hand", "R"), ("UAB002", "baseline", "foot", "L")}
    hand = _stored(rows[("UAB001", "baseline", "hand", "L")])
    assert hand.mode == "I;16" and np.array_equal(np.asarray(hand), left)  # 16-bit pixels kept exactly
    foot = _stored(rows[("UAB002", "baseline", "foot", "L")])
    assert foot.mode == "L" and foot.size == (128, 160)
    assert by_file(report)["feet/UAB002-lf.JPG"]["side"] == "LF"


def test_importing_the_same_folder_twice_skips_every_file(schemes, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for seed in (1, 2):
        left, right = phantom_pair(seed)
        (folder / f"P{seed}-LH.png").write_bytes(png16_bytes(left))
        (folder / f"P{seed}-RH.png").write_bytes(png16_bytes(right))
    first, _ = run_import(str(folder), "--project", "p")
    files_after_first = media_files(settings.MEDIA_ROOT)

    second, failed = run_import(str(folder), "--project", "p")

    assert first["imported"] == 4
    assert not failed and (second["imported"], second["skipped"], second["failed"]) == (0, 4, 0)
    assert by_file(second)["P1-LH.png"]["reason"] == f"Already imported as radiograph #{by_file(first)['P1-LH.png']['radiograph']} (P1/baseline LH)."
    assert Radiograph.objects.count() == 4
    assert media_files(settings.MEDIA_ROOT) == files_after_first


def test_a_re_encoded_copy_of_an_imported_image_is_the_same_radiograph(schemes, tmp_path):
    left, _ = phantom_pair(3)
    (tmp_path / "P3-LH.png").write_bytes(png16_bytes(left))
    buffer = io.BytesIO()
    Image.fromarray(left).save(buffer, format="TIFF")
    (tmp_path / "P3_copy-LH.tif").write_bytes(buffer.getvalue())

    report, _ = run_import(str(tmp_path), "--project", "p")

    assert by_file(report)["P3_copy-LH.tif"]["status"] == "skipped"
    assert "the stored one is kept" in by_file(report)["P3_copy-LH.tif"]["reason"]
    assert Radiograph.objects.count() == 1


def test_a_new_project_gets_the_scheme_asked_for_and_an_existing_one_keeps_its_own(schemes, tmp_path):
    (tmp_path / "P1-LH.png").write_bytes(radiograph_png(1))
    run_import(str(tmp_path), "--project", "proto", "--scheme", "prototype")
    assert Project.objects.get(slug="proto").scheme.key == "prototype"
    with pytest.raises(CommandError, match="already exists with scheme prototype, not svdh"):
        call_command("import_radiographs", str(tmp_path), "--project", "proto", "--scheme", "svdh", stdout=io.StringIO())


BAD_FILES = {
    "not an image": ("P1-LH.png", lambda: b"patient list, not a picture", "This is not a PNG, JPEG, TIFF or DICOM image."),
    "truncated png": ("P1-LH.png", lambda: radiograph_png(1)[:2000], "The image is truncated or corrupt (Truncated File Read)."),
    "corrupt png": ("P1-LH.png", lambda: _flip_byte(radiograph_png(1)), "The image is truncated or corrupt (broken PNG file (bad header checksum in b'IDAT'))."),
    "truncated jpeg": (
        "P1-LH.jpg",
        lambda: jpeg_bytes(to_8bit(phantom_pair(1)[0]))[:3000],
        "The image is truncated or corrupt (image file is truncated",
    ),
    "zero bytes": ("P1-LH.png", lambda: b"", "The file is empty (0 bytes)."),
    "decompression bomb": (
        "P1-LH.png",
        lambda: _png_claiming(100_000, 100_000),
        "The image is too large (10,000,000,000 pixels); at most 80,000,000 pixels are accepted (MAX_IMAGE_PIXELS).",
    ),
    "colour photograph": ("P1-LH.jpg", _colour_photograph, "This looks like a colour photograph, not a radiograph ("),
    "blank": ("P1-LH.png", lambda: png16_bytes(np.full((40, 30), 1234, np.uint16)), "The image is blank: every pixel has the same value."),
}


def _flip_byte(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_a_bad_file_is_refused_with_a_clear_message_and_nothing_is_stored(schemes, tmp_path, case):
    name, content, message = BAD_FILES[case]
    (tmp_path / name).write_bytes(content())

    report, failed = run_import(str(tmp_path), "--project", "p")

    assert failed and report["failed"] == 1
    assert by_file(report)[name]["reason"].startswith(message)
    assert not Radiograph.objects.exists() and not Visit.objects.exists()
    assert media_files(settings.MEDIA_ROOT) == {}


def test_an_image_over_the_pixel_limit_is_refused(schemes, tmp_path, settings):
    settings.MAX_IMAGE_PIXELS = 20_000
    (tmp_path / "P1-LH.png").write_bytes(radiograph_png(1))  # 128 x 160

    report, failed = run_import(str(tmp_path), "--project", "p")

    assert failed
    assert by_file(report)["P1-LH.png"]["reason"] == (
        "The image is too large (128 x 160 = 20,480 pixels); at most 20,000 pixels are accepted (MAX_IMAGE_PIXELS)."
    )
    assert not Radiograph.objects.exists() and media_files(settings.MEDIA_ROOT) == {}


def test_a_link_leading_out_of_the_folder_is_not_followed(schemes, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret-LH.png").write_bytes(radiograph_png(1))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "P1-LH.png").symlink_to(outside / "secret-LH.png")
    (folder / "more").symlink_to(outside, target_is_directory=True)

    report, failed = run_import(str(folder), "--project", "p")

    files = by_file(report)
    assert failed
    assert files["P1-LH.png"]["reason"] == "The path leads outside the imported folder (a link or '..'); it was not read."
    assert files["more/"]["status"] == "failed"
    assert not Radiograph.objects.exists() and media_files(settings.MEDIA_ROOT) == {}


def test_colour_marks_on_a_grey_radiograph_are_kept_in_grey_with_a_warning(schemes, tmp_path):
    (tmp_path / "P1-LH.png").write_bytes(_with_red_ruler(to_8bit(phantom_pair(1)[0])))

    report, failed = run_import(str(tmp_path), "--project", "p")

    outcome = by_file(report)["P1-LH.png"]
    assert not failed and outcome["status"] == "imported"
    assert outcome["warnings"] == ["Coloured marks on 1.0% of the pixels were converted to grey."]
    assert _stored(Radiograph.objects.get()).mode == "L"


def test_a_colour_photograph_is_imported_in_grey_only_when_colour_is_allowed(schemes, tmp_path):
    (tmp_path / "P1-LH.jpg").write_bytes(_colour_photograph())

    report, failed = run_import(str(tmp_path), "--project", "p", "--allow-colour")

    outcome = by_file(report)["P1-LH.jpg"]
    assert not failed and outcome["status"] == "imported"
    assert outcome["warnings"][0].startswith("A colour image (")
    assert _stored(Radiograph.objects.get()).mode == "L"


def test_other_files_in_the_folder_are_skipped_and_said_so(schemes, tmp_path):
    (tmp_path / "P1-LH.png").write_bytes(radiograph_png(1))
    (tmp_path / "P1-LH.json").write_text("{}")
    (tmp_path / ".DS_Store").write_bytes(b"\0\0")

    report, failed = run_import(str(tmp_path), "--project", "p")

    files = by_file(report)
    assert not failed and report["imported"] == 1
    assert files["P1-LH.json"]["reason"] == "Not an image file type (.json)."
    assert files[".DS_Store"]["reason"] == "Hidden file."


def test_a_file_without_the_name_pattern_or_a_manifest_is_refused(schemes, tmp_path):
    (tmp_path / "scan 0001.png").write_bytes(radiograph_png(1))

    report, failed = run_import(str(tmp_path), "--project", "p")

    assert failed
    assert by_file(report)["scan 0001.png"]["reason"].startswith("No patient: name the file {patient}[_{timepoint}]-{LH|RH|LF|RF}.{ext}")
    assert media_files(settings.MEDIA_ROOT) == {}


def test_a_patient_name_too_long_for_a_pseudonym_is_refused(schemes, tmp_path):
    name = "P" * 65 + "-LH.png"
    (tmp_path / name).write_bytes(radiograph_png(1))

    report, failed = run_import(str(tmp_path), "--project", "p")

    assert failed
    assert by_file(report)[name]["reason"].endswith("must be 1-64 letters, digits, dots, hyphens or underscores.")
    assert not Radiograph.objects.exists()


def test_the_manifest_places_files_of_any_name_and_reports_what_it_lacks(schemes, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "scan1.png").write_bytes(radiograph_png(1))
    (folder / "scan2.png").write_bytes(radiograph_png(2))
    (folder / "unlisted.png").write_bytes(radiograph_png(3))
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "file,patient,timepoint,laterality,body_part\n"
        "scan1.png,S-01,m6,right,foot\n"
        "scan2.png,S-02,,LH,\n"
        "missing.png,S-03,,L,hand\n"
        "../outside.png,S-04,,R,hand\n"
    )

    report, failed = run_import(str(folder), "--project", "p", "--manifest", str(manifest))

    files = by_file(report)
    assert failed and (report["imported"], report["skipped"], report["failed"]) == (2, 1, 2)
    assert (files["scan1.png"]["patient"], files["scan1.png"]["timepoint"], files["scan1.png"]["side"]) == ("S-01", "m6", "RF")
    assert (files["scan2.png"]["patient"], files["scan2.png"]["timepoint"], files["scan2.png"]["side"]) == ("S-02", "baseline", "LH")
    assert files["unlisted.png"]["reason"] == "Not listed in the manifest."
    assert files["missing.png"]["reason"] == "Listed in the manifest (line 4) but not found."
    assert files["../outside.png"]["reason"].startswith("The path leads outside the imported folder")
    assert "manifest.csv" not in files


def test_a_bad_manifest_is_refused_whole_before_anything_is_stored(schemes, tmp_path):
    (tmp_path / "scan1.png").write_bytes(radiograph_png(1))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("file,patient,laterality\nscan1.png,S-01,X\nscan1.png,S-02,L\n")

    with pytest.raises(CommandError) as refused:
        call_command("import_radiographs", str(tmp_path), "--project", "p", "--manifest", str(manifest), stdout=io.StringIO())

    assert "Manifest line 2: laterality 'X' must be L, R, left, right, LH, RH, LF or RF." in str(refused.value)
    assert "Manifest line 3: 'scan1.png' is already listed on line 2." in str(refused.value)
    assert not Project.objects.filter(slug="p").exists() and media_files(settings.MEDIA_ROOT) == {}


def test_the_command_prints_one_line_per_file_and_the_counts(schemes, tmp_path):
    (tmp_path / "P1-LH.png").write_bytes(radiograph_png(1))
    (tmp_path / "P2-LH.png").write_bytes(b"")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 file\\(s\\) failed"):
        call_command("import_radiographs", str(tmp_path), "--project", "p", stdout=out)
    radiograph = Radiograph.objects.get()
    assert out.getvalue().splitlines() == [
        f"imported P1-LH.png -> P1/baseline LH #{radiograph.pk}",
        "failed   P2-LH.png: The file is empty (0 bytes).",
        "1 imported, 0 skipped, 1 failed.",
    ]


# Upload API -------------------------------------------------------------------------------------


def _upload(user, project, *files, **fields):
    return client_for(user).post(
        reverse("api-radiograph-upload", args=[project.pk]),
        {"files": [SimpleUploadedFile(name, content) for name, content in files], **fields},
        format="multipart",
    )


def test_a_lead_uploads_radiographs_and_gets_the_report(world):
    response = _upload(world.users["lead"], world.alpha, ("NEW-01-LH.png", radiograph_png(5)), ("NEW-01-RH.png", radiograph_png(5, "R")))

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["imported"], body["skipped"], body["failed"]) == (2, 0, 0)
    assert [item["side"] for item in body["files"]] == ["LH", "RH"]
    radiograph = Radiograph.objects.get(pk=body["files"][0]["radiograph"])
    assert (radiograph.project, radiograph.visit.patient.pseudonym, radiograph.laterality) == (world.alpha, "NEW-01", "L")


def test_uploading_a_file_already_in_the_project_answers_200_with_it_skipped(world):
    _upload(world.users["staff"], world.alpha, ("NEW-01-LH.png", radiograph_png(5)))

    response = _upload(world.users["lead"], world.alpha, ("again-LH.png", radiograph_png(5)))

    assert response.status_code == 200
    assert response.json()["files"][0]["status"] == "skipped"


@pytest.mark.parametrize(
    ("persona", "status"),
    [("staff", 201), ("reader_a", 403), ("other_lead", 404), ("outsider", 404), (None, 401)],
)
def test_only_leads_and_staff_may_upload(world, persona, status):
    user = world.users[persona] if persona else None
    before = Radiograph.objects.count()

    response = _upload(user, world.alpha, ("NEW-02-LH.png", radiograph_png(6)))

    assert response.status_code == status
    assert Radiograph.objects.count() == before + (1 if status == 201 else 0)


def test_an_upload_with_a_bad_file_is_refused_whole_naming_the_file(world):
    radiographs_before, media_before = Radiograph.objects.count(), media_files(settings.MEDIA_ROOT)

    response = _upload(
        world.users["lead"],
        world.alpha,
        ("NEW-03-LH.png", radiograph_png(7)),
        ("NEW-03-RH.png", radiograph_png(7, "R")[:1500]),
        ("NEW-04-LH.png", b""),
        ("holiday.jpg", _colour_photograph()),
    )

    assert response.status_code == 400
    errors = response.json()["files"]
    assert errors["NEW-03-RH.png"] == ["The image is truncated or corrupt (Truncated File Read)."]
    assert errors["NEW-04-LH.png"] == ["The file is empty (0 bytes)."]
    assert errors["holiday.jpg"][0].startswith("This looks like a colour photograph")
    assert "NEW-03-LH.png" not in errors
    assert Radiograph.objects.count() == radiographs_before
    assert media_files(settings.MEDIA_ROOT) == media_before


def test_an_upload_with_a_manifest_places_files_by_it(world):
    manifest = SimpleUploadedFile("manifest.csv", b"file,patient,timepoint,laterality\nimg.png,M-9,m24,R\n")
    response = client_for(world.users["lead"]).post(
        reverse("api-radiograph-upload", args=[world.alpha.pk]),
        {"files": [SimpleUploadedFile("img.png", radiograph_png(8))], "manifest": manifest},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    item = response.json()["files"][0]
    assert (item["patient"], item["timepoint"], item["side"]) == ("M-9", "m24", "RH")
