"""Time `make demo` from its start to the first model suggestion served to `reader1`.

Runs `make demo DEMO_PORT=PORT` in a checkout (a fresh clone whose `make install` has run), polls
the reader API every second as `reader1` (worklist, then the suggestions of the first assignment
that has any) and prints when each phase of the start-up was seen, in seconds from the start:

    python scripts/demo_first_suggestion.py --checkout /tmp/demo-clone --port 16080

Standard library only, so it needs nothing from the checkout's environment. The demo is stopped
(SIGINT, as Ctrl-C) once the first suggestion came, or after --timeout seconds.
"""
from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

# Lines of `make demo`'s output that mark a phase, and the phase they start or end.
MARKS = [
    (re.compile(r"manage\.py serve_demo"), "serve_demo started (the worker starts while it migrates)"),
    (re.compile(r"^Running migrations:"), "migrate running"),
    (re.compile(r"^Seeding the demo"), "migrate done; web server starting, seed_demo running"),
    (re.compile(r"^Project '.*radiographs"), "seed_demo done: logins, project, the first worklist hands; the worker seeds the rest"),
    (re.compile(r"RA joint scoring demo:"), "serve_demo banner"),
]


class Reader:
    """A session of `reader1` against the demo's API."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base, self.username, self.password = base, username, password
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.logged_in = False

    def _open(self, path: str, data: bytes | None = None, headers: dict | None = None):
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        return self.opener.open(request, timeout=60)

    def answering(self) -> bool:
        try:
            with self._open("/login/") as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def login(self) -> bool:
        self._open("/login/").read()
        token = next((c.value for c in self.jar if c.name == "csrftoken"), "")
        body = urllib.parse.urlencode({"username": self.username, "password": self.password, "csrfmiddlewaretoken": token}).encode()
        with self._open("/login/", body, {"Referer": self.base + "/login/"}) as response:
            response.read()
        self.logged_in = any(c.name == "sessionid" for c in self.jar)
        return self.logged_in

    def get(self, path: str):
        with self._open(path) as response:
            return json.loads(response.read() or b"null") if response.status == 200 else None

    def first_suggestion(self) -> str | None:
        """'assignment N: K suggestions' for the first assignment of reader1 that has suggestions."""
        projects = self.get("/api/projects/") or []
        projects = projects.get("results", projects) if isinstance(projects, dict) else projects
        for project in projects:
            worklist = self.get(f"/api/projects/{project['id']}/worklist/") or {}
            pending = [x for x in worklist.get("assignments") or [] if x.get("status") != "submitted"]
            # Only the first visit's films (two hands, two feet): a reader opens the top of the
            # worklist, not its tail.
            for assignment in pending[:4]:
                payload = self.get(f"/api/assignments/{assignment['id']}/suggestions/") or {}
                if payload.get("suggestions"):
                    return f"assignment {assignment['id']}: {len(payload['suggestions'])} suggestions from {payload.get('model_version')}"
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkout", default=".", help="the clone to run `make demo` in")
    p.add_argument("--port", type=int, default=16080)
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--keep-running", action="store_true", help="leave the demo running after the first suggestion")
    a = p.parse_args(argv)

    started = time.monotonic()
    events: list[tuple[float, str]] = []

    def mark(what: str) -> None:
        events.append((time.monotonic() - started, what))
        print(f"{events[-1][0]:7.1f} s  {what}", flush=True)

    demo = subprocess.Popen(
        ["make", "demo", f"DEMO_PORT={a.port}"], cwd=a.checkout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )

    def follow() -> None:
        for line in demo.stdout:
            for pattern, what in MARKS:
                if pattern.search(line):
                    mark(what)
            if os.environ.get("DEMO_VERBOSE"):
                print("        | " + line.rstrip(), flush=True)

    threading.Thread(target=follow, daemon=True).start()
    reader = Reader(f"http://127.0.0.1:{a.port}", "reader1", "demo-reader")
    found, attempts = None, 0
    try:
        while time.monotonic() - started < a.timeout and demo.poll() is None:
            time.sleep(1.0)
            if not reader.logged_in:
                if not reader.answering():
                    continue
                if not any(w == "web server answering" for _, w in events):
                    mark("web server answering")
                attempts += 1
                # Few tries: the login throttle locks a user out after five wrong passwords.
                try:
                    logged_in = attempts <= 4 and reader.login()
                except (urllib.error.URLError, OSError) as error:
                    print(f"        login failed: {error}", flush=True)
                    logged_in = False
                if not logged_in:
                    time.sleep(4.0)
                    continue
                mark("reader1 logged in")
            try:
                found = reader.first_suggestion()
            except (urllib.error.URLError, OSError, ValueError) as error:
                print(f"        poll failed: {error}", flush=True)
                continue
            if found:
                mark(f"first suggestion served to reader1 ({found})")
                break
    finally:
        if not (found and a.keep_running) and demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
    if not found:
        mark("no suggestion before the timeout")
        return 1
    print(json.dumps({"seconds_to_first_suggestion": round(events[-1][0], 1), "phases": [[round(t, 1), w] for t, w in events]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
