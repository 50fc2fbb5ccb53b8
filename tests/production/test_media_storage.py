"""Media through an S3 API (moto's server, as in the production-stack test): what the web servers
and workers write and read goes to the bucket, and radiographs reach a browser only through the API.
Also the local-disk storage of the embedded default, which writes each file whole."""
from __future__ import annotations

import hashlib
import io
import os

import boto3
import pytest
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from annotation import renditions, services
from config.storage import AtomicFileSystemStorage
from modeling.ml.train import checkpoint_to_bytes
from modeling.models import ModelVersion
from modeling.services import model_version_checkpoint

from ..conftest import client_for, make_radiograph
from .conftest import S3_CREDENTIALS

BUCKET = "media-unit"


@pytest.fixture
def s3_media(s3_endpoint, settings):
    """The default storage on the S3 server, as settings.py configures it with S3_BUCKET; a fresh bucket."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id=S3_CREDENTIALS["S3_ACCESS_KEY_ID"],
                          aws_secret_access_key=S3_CREDENTIALS["S3_SECRET_ACCESS_KEY"])
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "bucket_name": BUCKET, "endpoint_url": s3_endpoint, "region_name": "us-east-1",
            "access_key": S3_CREDENTIALS["S3_ACCESS_KEY_ID"], "secret_key": S3_CREDENTIALS["S3_SECRET_ACCESS_KEY"],
            "addressing_style": "path", "signature_version": "s3v4", "default_acl": None,
        }},
    }
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _keys(client) -> set[str]:
    return {item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_radiographs_and_renditions_live_in_the_bucket_and_stream_only_to_allowed_users(world, s3_media, settings, django_capture_on_commit_callbacks):
    radiograph = make_radiograph(world.alpha, "S3-PSEUDO-001")
    services.assignments_create(radiograph=radiograph, readers=[world.users["reader_a"]])
    stored = s3_media.get_object(Bucket=BUCKET, Key=radiograph.image.name)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == radiograph.checksum

    image = client_for(world.users["reader_a"]).get(reverse("api-radiograph-image", args=[radiograph.pk]))
    assert image.status_code == 200 and b"".join(image.streaming_content) == stored
    assert client_for(world.users["outsider"]).get(reverse("api-radiograph-image", args=[radiograph.pk])).status_code == 404

    display = client_for(world.users["reader_a"]).get(reverse("api-radiograph-rendition", args=[radiograph.pk, "display"]))
    assert display.status_code == 200 and display["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(b"".join(display.streaming_content))).size == (64, 80)
    name = renditions.rendition_name(project_id=world.alpha.pk, checksum=radiograph.checksum, kind="display")
    heatmap = f"heatmaps/v9/{radiograph.pk}/pip_E__2.png"
    default_storage.save(heatmap, ContentFile(b"\x89PNG"))
    assert {radiograph.image.name, name, heatmap} <= _keys(s3_media)
    assert not (settings.MEDIA_ROOT / "renditions").exists()  # nothing went to the local disk

    with django_capture_on_commit_callbacks(execute=True):
        radiograph.delete()
    assert {radiograph.image.name, name, heatmap} & _keys(s3_media) == set()


def test_a_model_checkpoint_is_written_to_and_read_from_the_bucket(world, s3_media):
    checkpoint = {"config": {"epochs": 3}, "weights": {"w": torch.arange(6, dtype=torch.float32)}}
    version = ModelVersion.objects.create(project=world.alpha, number=4)
    version.checkpoint.save("v4.pt", ContentFile(checkpoint_to_bytes(checkpoint)))
    assert f"models/{world.alpha.pk}/v4.pt" in _keys(s3_media)

    loaded = model_version_checkpoint(version=ModelVersion.objects.get(pk=version.pk))
    assert loaded["config"] == {"epochs": 3} and torch.equal(loaded["weights"]["w"], torch.arange(6, dtype=torch.float32))


def test_local_storage_never_shows_a_partial_file_and_never_replaces_one(tmp_path):
    storage = AtomicFileSystemStorage(location=tmp_path)
    first = storage.save("renditions/1/abc-display.jpg", ContentFile(b"A" * 100_000))
    second = storage.save("renditions/1/abc-display.jpg", ContentFile(b"B" * 10))
    assert first == "renditions/1/abc-display.jpg" and second != first
    assert (tmp_path / first).read_bytes() == b"A" * 100_000 and (tmp_path / second).read_bytes() == b"B" * 10
    assert sorted(path.name for path in (tmp_path / "renditions" / "1").iterdir()) == sorted([os.path.basename(first), os.path.basename(second)])
    assert oct((tmp_path / first).stat().st_mode & 0o777) == oct(0o644)


def test_prepare_media_storage_creates_a_missing_bucket_and_refuses_a_public_one(s3_media, settings):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    output = io.StringIO()
    call_command("prepare_media_storage", stdout=output)
    assert output.getvalue().strip() == f"Media bucket '{BUCKET}' exists; private."

    settings.STORAGES = {**settings.STORAGES, "default": {**settings.STORAGES["default"], "OPTIONS": {
        **settings.STORAGES["default"]["OPTIONS"], "bucket_name": "media-fresh"}}}
    output = io.StringIO()
    call_command("prepare_media_storage", stdout=output)
    assert "Media bucket 'media-fresh' created; private." in output.getvalue()
    assert "media-fresh" in {bucket["Name"] for bucket in s3_media.list_buckets()["Buckets"]}

    s3_media.put_bucket_acl(Bucket="media-fresh", ACL="public-read")
    with pytest.raises(CommandError, match="grants READ \\(ACL\\) to everyone"):
        call_command("prepare_media_storage", stdout=io.StringIO())
    s3_media.delete_bucket(Bucket="media-fresh")
