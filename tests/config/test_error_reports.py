"""A request that fails with a server error never shows or logs the request's content.

The upload is a DICOM full of identifying values; a decoder that chokes on it quotes one of them in
its message, as libraries do. Neither the answer (Django's debug page with DEBUG on, the plain
page with it off) nor the log line may hold any of them, nor the uploaded file's name.
"""
from __future__ import annotations

import io
import logging
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from annotation import sources
from config.redaction import RedactingFormatter
from tests.annotation.ingest_samples import IDENTIFYING, dicom_bytes, hand_stored_values

PHI = [*IDENTIFYING.values(), "DOE", "19610203", "MRN-123456", "Kowalska-MRN-88231977"]


@pytest.fixture
def console_log():
    """What the configured console handler writes, read back after the request."""
    # The handler LOGGING configures (pytest adds its own capture handlers, subclasses of it).
    handlers = [handler for handler in logging.getLogger().handlers if type(handler) is logging.StreamHandler]
    assert handlers
    stream = io.StringIO()
    previous = [handler.setStream(stream) for handler in handlers]
    yield stream
    for handler, old in zip(handlers, previous):
        handler.setStream(old)


@pytest.mark.parametrize("debug", [True, False])
def test_a_failing_phi_laden_upload_shows_and_logs_no_request_content(world, settings, monkeypatch, console_log, debug):
    settings.DEBUG = debug
    real_decode = sources.image_decode

    def choking_decode(data, **kwargs):
        real_decode(data, **kwargs)  # the frame holds the bytes; the message quotes a header value
        raise RuntimeError(f"cannot interpret PatientName {IDENTIFYING['PatientName']!r}")

    monkeypatch.setattr(sources, "image_decode", choking_decode)
    client = Client(raise_request_exception=False)
    client.force_login(world.users["lead"])

    response = client.post(
        reverse("api-radiograph-upload", args=[world.alpha.pk]) + "?note=Kowalska-MRN-88231977",
        {"files": [SimpleUploadedFile("Kowalska-MRN-88231977-LH.dcm", dicom_bytes(hand_stored_values()[0]))], "timepoint": "m12"},
        HTTP_ACCEPT="text/html",
    )

    assert response.status_code == 500
    page = response.content.decode("utf-8", "replace")
    logged = console_log.getvalue()
    assert "Internal Server Error" in logged  # the failure itself is logged ...
    for value in PHI:
        assert value not in page, (value, "page")
        assert value not in logged, (value, "log")  # ... without the content
    if debug:
        # The developer still sees what failed and where.
        assert "RuntimeError" in page and "choking_decode" in page
        assert "RuntimeError" in logged and "choking_decode" in logged


def test_the_log_formatter_keeps_the_exception_type_and_drops_its_message():
    name = "DOE" + "^JANE"  # built at run time, so the traceback's source line does not hold it
    try:
        raise ValueError(f"Invalid value for VR PN: {name!r}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), exc_info=sys.exc_info())
    text = RedactingFormatter("%(message)s").format(record)
    assert "ValueError" in text and "DOE^JANE" not in text and "test_the_log_formatter" in text
