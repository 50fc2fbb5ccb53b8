"""An upload request holds one image's pixels at a time, however many files it carries."""
from __future__ import annotations

import tracemalloc

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.management.commands.bench_upload_memory import large_png
from annotation.models import Radiograph
from tests.conftest import client_for

SIDE = 2000  # 4 MB of 8-bit pixels per image: large against everything else a request allocates


def _peak_of_upload(world, seeds: range) -> int:
    files = [SimpleUploadedFile(f"M{seed:03d}-LH.png", large_png(SIDE, seed)) for seed in seeds]
    client = client_for(world.users["lead"])
    tracemalloc.start()
    try:
        response = client.post(reverse("api-radiograph-upload", args=[world.alpha.pk]), {"files": files}, format="multipart")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 201 and response.json()["imported"] == len(seeds)
    return peak


def test_four_large_files_in_one_request_peak_no_higher_than_one_plus_a_margin(world):
    one = _peak_of_upload(world, range(0, 1))
    four = _peak_of_upload(world, range(10, 14))

    image = SIDE * SIDE
    # Holding every decoded file until the last is stored would add at least 3 images' pixels.
    assert four < one + image, (one / 2**20, four / 2**20)
    assert Radiograph.objects.filter(project=world.alpha).count() >= 5
