"""Error pages and log lines that never carry request bodies or file contents.

An uploaded DICOM header holds the patient's name, ID, birth date and address; a failed request
must not send it back on Django's debug page, put it in an admin e-mail or write it to a log. Django's
own `SafeExceptionReporterFilter` is off while DEBUG is on and hides only settings and variables a
function names as sensitive, so here every request value and every traceback variable is replaced,
in every mode, and exception messages (which libraries fill with the values they choke on) are
withheld from pages and logs alike. Where the error happened (file, line, function, exception type)
stays visible.
"""
from __future__ import annotations

import logging
import traceback

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

WITHHELD = "[withheld: may hold patient data]"


class RedactingReporterFilter(SafeExceptionReporterFilter):
    """Replaces every POST value, every uploaded file and every frame variable."""

    def is_active(self, request) -> bool:
        return True  # also with DEBUG on: the development default is where the leak was

    def get_post_parameters(self, request):
        if request is None:
            return {}
        return {name: WITHHELD for name in request.POST}

    def get_traceback_frame_variables(self, request, tb_frame):
        return [(name, WITHHELD) for name in tb_frame.f_locals]


class RedactingExceptionReporter(ExceptionReporter):
    """Django's reporter without the exception message, uploaded file names, the query string or
    cookies; used for the DEBUG page and the admin e-mails."""

    def get_traceback_data(self):
        data = super().get_traceback_data()
        if self.exc_type is not None:
            data["exception_value"] = f"{WITHHELD} ({self.exc_type.__name__})"
        data.pop("exception_notes", None)
        data["unicode_hint"] = ""
        for frame in data.get("frames", []):
            frame["exc_cause"] = None if frame.get("exc_cause") is None else WITHHELD
            frame["vars"] = [(name, WITHHELD) for name, _ in frame.get("vars", [])]
        if self.request is not None:
            data["request_GET_items"] = [(name, WITHHELD) for name in self.request.GET]
            data["request_FILES_items"] = [(name, WITHHELD) for name in self.request.FILES]
            data["request_COOKIES_items"] = [(name, WITHHELD) for name in self.request.COOKIES]
            data["request_meta"] = {
                name: (value if name in _SAFE_META else WITHHELD) for name, value in data.get("request_meta", {}).items()
            }
            data["request_insecure_uri"] = self.request.path
        return data


# Request headers that describe the request without carrying content or credentials.
_SAFE_META = {"REQUEST_METHOD", "PATH_INFO", "SERVER_NAME", "SERVER_PORT", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_HOST"}


class RedactingFormatter(logging.Formatter):
    """Tracebacks in logs keep their frames and exception types, and lose the messages."""

    def formatException(self, ei) -> str:
        exc_type, exc, tb = ei
        if exc is None:
            return super().formatException(ei)
        # TracebackException.format ends each exception with "Type: message"; keep only the type.
        parts = traceback.TracebackException(exc_type, exc, tb).format()
        return "".join(_strip_message(part) for part in parts).rstrip("\n")

    def format(self, record: logging.LogRecord) -> str:
        # Another handler may already have cached the full traceback text on the record.
        cached = record.exc_text
        record.exc_text = None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached


def _strip_message(line: str) -> str:
    if line.startswith((" ", "\n", "Traceback", "During handling", "The above exception")):
        return line
    head = line.split(":", 1)[0].strip()
    if head and " " not in head:
        return f"{head}: {WITHHELD}\n"
    return line
