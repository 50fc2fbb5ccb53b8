"""Measure the peak memory one upload request adds to the web process, by number of files.

Each measurement runs in a fresh Python process (a process that already decoded large images keeps
their freed memory, which would hide the next request's peak): it logs in a throw-away lead,
uploads N large low-entropy PNGs through the real view, samples its own resident set every few
milliseconds, then deletes everything it made.

    .venv/bin/python manage.py bench_upload_memory --size 8900 --files 1 4
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


class PeakSampler:
    """The highest resident set seen while it runs, sampled every `interval` seconds."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakSampler:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def large_png(size: int, seed: int) -> bytes:
    """A grey size x size 8-bit PNG that compresses to a few hundred kilobytes, unique per seed."""
    from PIL import Image

    row = (np.arange(size, dtype=np.uint32) * 255 // max(size - 1, 1)).astype(np.uint8)
    pixels = np.broadcast_to(row, (size, size)).copy()
    pixels[seed * 7 % size : seed * 7 % size + size // 10, : size // 3] = 255 - (seed % 50)  # a unique 'bone'
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class Command(BaseCommand):
    help = "Peak memory one upload request adds, for each number of files (fresh process each)."

    def add_arguments(self, parser):
        parser.add_argument("--size", type=int, default=8900, help="image side in pixels (default 8900: 79 MP)")
        parser.add_argument("--files", type=int, nargs="+", default=[1, 4], help="files per request")
        parser.add_argument("--one", type=int, help= "measure one request of this many files here (internal)")

    def handle(self, *args, size: int, files: list[int], one: int | None, **options):
        if one is not None:
            self.stdout.write(json.dumps(_measure(size=size, count=one)))
            return
        self.stdout.write(f"Upload of {size} x {size} 8-bit PNGs ({size * size / 1e6:.0f} MP each), MAX_IMAGE_PIXELS {settings.MAX_IMAGE_PIXELS:,}")
        for count in files:
            result = subprocess.run(
                [sys.executable, "manage.py", "bench_upload_memory", "--size", str(size), "--one", str(count)],
                cwd=settings.BASE_DIR, capture_output=True, text=True, check=True,
            )
            row = json.loads(result.stdout.strip().splitlines()[-1])
            self.stdout.write(
                f"{count:>3} file(s) of {row['file_kb']:.0f} KB: HTTP {row['status']}, peak added {row['peak_mb']:.0f} MB, {row['seconds']:.1f} s"
            )


def _measure(*, size: int, count: int) -> dict:
    import shutil
    import tempfile

    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import reverse

    from annotation import services
    from annotation.models import Membership

    stamp = f"bench-upload-{int(time.time() * 1000)}"
    media = tempfile.mkdtemp(prefix="bench-upload-media-")
    user = get_user_model().objects.create_user(username=stamp)
    project = services.project_create(name=stamp, slug=stamp)
    Membership.objects.create(user=user, project=project, role=Membership.Role.LEAD)
    try:
        images = [large_png(size, seed) for seed in range(count)]
        files = [SimpleUploadedFile(f"B{seed:03d}-LH.png", data) for seed, data in enumerate(images)]
        with override_settings(MEDIA_ROOT=media, ALLOWED_HOSTS=["testserver"]):
            client = Client()
            client.force_login(user)
            started = time.perf_counter()
            with PeakSampler() as sampler:
                baseline = rss_bytes()
                response = client.post(reverse("api-radiograph-upload", args=[project.pk]), {"files": files})
            seconds = time.perf_counter() - started
        return {
            "files": count,
            "file_kb": sum(len(data) for data in images) / count / 1024,
            "status": response.status_code,
            "peak_mb": (sampler.peak - baseline) / 2**20,
            "seconds": seconds,
        }
    finally:
        project.delete()
        user.delete()
        shutil.rmtree(media, ignore_errors=True)
