"""Load and fault benchmark: readers saving and submitting through gunicorn while processes die.

N simulated readers (threads, each with its own token and think time) grade their assignments in
small bulk saves and submit them through a real gunicorn on the configured database. Mid-run one
web worker is killed with SIGKILL; during a consensus recompute the Celery worker is killed and
started again; then a first model version is trained and promoted, and the Celery worker is killed
while it trains the next. Afterwards it checks that every acknowledged grade and submission is in
the database, that no consensus run is half-stored (each stored run has one label per task), that
a recompute after the crash completes, that the promoted version still serves suggestions and the
killed run is marked failed, and that the web server still answers. It prints save latency
percentiles and throughput, then removes what it created.

    .venv/bin/python manage.py bench_load_fault --readers 50 --seconds 60
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

CELLS_PER_SAVE = 4
# Small phantoms and a tiny network: the benchmark times the platform, not the model.
PHANTOM_SIDE = (192, 240)
BENCH_MODEL_CONFIG = {
    "landmark": {"input_size": [80, 64], "widths": [8, 16]},
    "grading": {"crop_size": 24, "widths": [8, 16], "hidden": 16, "embed_dim": 4},
    "num_threads": 1,
    "val_fraction": 0.0,
    "test_fraction": 0.0,
}


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds per acknowledged save
    acknowledged: dict[tuple[int, str], int] = field(default_factory=dict)  # (assignment, area) -> value
    submitted: set[int] = field(default_factory=set)
    conflicts: int = 0
    connection_errors: int = 0
    server_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _free_port(preferred: int) -> int:
    for port in [preferred, 0]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise CommandError("no free port")


class Client:
    def __init__(self, base: str, token: str):
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Token {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                text = response.read()
                return response.status, (json.loads(text) if text else {})
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, {}


def _reader(client: Client, assignments: list[int], deadline: float, think: float, tally: Tally, rng: random.Random) -> None:
    for assignment in assignments:
        while time.monotonic() < deadline:
            try:
                status, detail = client.call("GET", f"/api/assignments/{assignment}/")
            except OSError:
                with tally.lock:
                    tally.connection_errors += 1
                time.sleep(0.2)
                continue
            if status != 200:
                with tally.lock:
                    tally.server_errors += status >= 500
                time.sleep(0.2)
                continue
            break
        else:
            return
        versions = {grade["area"]: grade["version"] for grade in detail["grades"]}
        areas = [(area["code"], area["max_grade"]) for area in detail["areas"]]
        pending = [area for area in areas if area[0] not in versions]
        while pending and time.monotonic() < deadline:
            chunk, pending = pending[:CELLS_PER_SAVE], pending[CELLS_PER_SAVE:]
            items = [{"area": code, "value": rng.randint(0, top), "version": versions.get(code, 0)} for code, top in chunk]
            started = time.monotonic()
            try:
                status, body = client.call("PUT", f"/api/assignments/{assignment}/grades/", {"grades": items})
            except OSError:  # the worker holding the connection was killed: unacknowledged, so retried
                with tally.lock:
                    tally.connection_errors += 1
                pending = chunk + pending
                _refresh(client, assignment, versions)
                continue
            elapsed = time.monotonic() - started
            with tally.lock:
                if status == 200:
                    tally.latencies.append(elapsed)
                    for grade in body["grades"]:
                        versions[grade["area"]] = grade["version"]
                        tally.acknowledged[(assignment, grade["area"])] = grade["value"]
                elif status == 409:  # a retried save that had landed before its connection died
                    tally.conflicts += 1
                    pending = chunk + pending
                else:
                    tally.server_errors += status >= 500
                    pending = chunk + pending
            if status == 409:
                _refresh(client, assignment, versions)
            time.sleep(rng.expovariate(1.0 / think) if think > 0 else 0)
        if pending:
            return
        for _ in range(5):
            try:
                status, _ = client.call("POST", f"/api/assignments/{assignment}/submit/", {"seconds_spent": 60})
            except OSError:
                with tally.lock:
                    tally.connection_errors += 1
                continue
            if status == 200 or (status == 400 and _submitted(client, assignment)):
                with tally.lock:
                    tally.submitted.add(assignment)
                break


def _refresh(client: Client, assignment: int, versions: dict) -> None:
    try:
        status, detail = client.call("GET", f"/api/assignments/{assignment}/")
    except OSError:
        return
    if status == 200:
        versions.update({grade["area"]: grade["version"] for grade in detail["grades"]})


def _submitted(client: Client, assignment: int) -> bool:
    try:
        status, detail = client.call("GET", f"/api/assignments/{assignment}/")
    except OSError:
        return False
    return status == 200 and detail["assignment"]["status"] == "submitted"


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Command(BaseCommand):
    help = "Readers saving and submitting through gunicorn while a web worker and the Celery worker are killed; checks nothing acknowledged is lost."

    def add_arguments(self, parser):
        parser.add_argument("--readers", type=int, default=50)
        parser.add_argument("--seconds", type=float, default=60.0)
        parser.add_argument("--think", type=float, default=1.0, help="mean think time between saves, seconds")
        parser.add_argument("--assignments", type=int, default=3, help="assignments per reader")
        parser.add_argument("--web-workers", type=int, default=3)
        parser.add_argument("--port", type=int, default=17010)
        parser.add_argument("--keep", action="store_true", help="keep the benchmark project afterwards")

    def handle(self, *args, readers: int, seconds: float, think: float, assignments: int, web_workers: int, port: int, keep: bool, **options):
        if connection.vendor != "postgresql":
            raise CommandError("run it on PostgreSQL (DATABASE_URL=postgres://...)")
        from annotation.models import Assignment, Grade

        # The web server, the worker and this process (which trains the first model version) share
        # one media folder, as they share one in production.
        media = str(settings.MEDIA_ROOT)
        stamp = f"bench-load-{int(time.time())}"
        project, reader_tokens, lead_token, check_assignment = _setup(stamp=stamp, readers=readers, per_reader=assignments)
        db = connection.settings_dict
        env = dict(os.environ)
        env.update(
            DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            CELERY_BROKER_URL=settings.CELERY_BROKER_URL, MEDIA_ROOT=media, DEBUG="0", LOG_LEVEL="WARNING",
            ALLOWED_HOSTS="127.0.0.1,localhost",
        )
        port = _free_port(port)
        # Stopped from outside (a timeout, Ctrl-C): still stop the servers it started, in `finally`.
        previous_handler = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        base = f"http://127.0.0.1:{port}"
        processes: dict[str, subprocess.Popen] = {}
        faults: list[str] = []
        try:
            processes["web"] = subprocess.Popen(
                # The production settings (worker class, threads), with the count asked for.
                [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-c", str(settings.BASE_DIR / "deploy" / "gunicorn.conf.py"),
                 "--bind", f"127.0.0.1:{port}", "--workers", str(web_workers), "--log-level", "warning"],
                cwd=settings.BASE_DIR, env=env, start_new_session=True,
            )
            processes["worker"] = _worker(env)
            _wait_http(base + "/api/schema/", 60)

            tally = Tally()
            deadline = time.monotonic() + seconds
            threads = [
                threading.Thread(
                    target=_reader, args=(Client(base, token), ids, deadline, think, tally, random.Random(index)), daemon=True
                )
                for index, (token, ids) in enumerate(reader_tokens)
            ]
            started = time.monotonic()
            for thread in threads:
                thread.start()

            time.sleep(seconds * 0.4)
            workers = _children(processes["web"].pid)
            if workers:
                os.kill(workers[0], signal.SIGKILL)
                faults.append(f"web worker {workers[0]} killed at {time.monotonic() - started:.1f} s")

            # A recompute, and the Celery worker killed while it runs.
            lead = Client(base, lead_token)
            killed = _kill_worker_during_recompute(lead, project, processes, env)
            faults.append(killed)
            processes["worker"] = _worker(env) if processes["worker"].poll() is not None else processes["worker"]

            for thread in threads:
                thread.join(timeout=max(1.0, deadline - time.monotonic() + 35))
            elapsed = time.monotonic() - started

            # After the crash: a new recompute completes.
            recomputed = _recompute_and_wait(lead, project, timeout=300)
            # A serving model, then the Celery worker killed while it trains the next version.
            serving = _serving_model(project)
            faults.append(_kill_worker_during_training(project, processes))
            if processes["worker"].poll() is not None:
                processes["worker"] = _worker(env)
            still_serves = _still_serves(Client(base, reader_tokens[0][0]), check_assignment, project, serving)
            web_alive = _wait_http(base + "/api/schema/", 10, quiet=True)
        finally:
            for process in processes.values():
                _stop(process)
            signal.signal(signal.SIGTERM, previous_handler)

        # Checks, on the database itself.
        stored = {
            (grade.assignment_id, grade.area.code): grade.value
            for grade in Grade.objects.filter(assignment__radiograph__project=project).select_related("area")
        }
        lost = [key for key, value in tally.acknowledged.items() if stored.get(key) != value]
        submitted = set(Assignment.objects.filter(radiograph__project=project, status=Assignment.Status.SUBMITTED).values_list("pk", flat=True))
        unsubmitted = tally.submitted - submitted
        half_stored = _half_stored_runs(project)

        saves = len(tally.latencies)
        self.stdout.write(
            f"{readers} readers, think {think:.1f} s, {elapsed:.0f} s through gunicorn ({web_workers} workers) on PostgreSQL\n"
            f"saves acknowledged: {saves} ({saves / elapsed:.1f}/s), cells {len(tally.acknowledged)}, submissions {len(tally.submitted)}\n"
            f"save latency: p50 {_percentile(tally.latencies, 50) * 1000:.0f} ms, p90 {_percentile(tally.latencies, 90) * 1000:.0f} ms, "
            f"p95 {_percentile(tally.latencies, 95) * 1000:.0f} ms, "
            f"p99 {_percentile(tally.latencies, 99) * 1000:.0f} ms, max {max(tally.latencies, default=float('nan')) * 1000:.0f} ms\n"
            f"faults: {'; '.join(faults)}\n"
            f"client side: {tally.connection_errors} connection errors (retried), {tally.conflicts} conflicts after a retry, {tally.server_errors} server errors\n"
            f"checks: {len(lost)} acknowledged grades missing, {len(unsubmitted)} acknowledged submissions missing, "
            f"{half_stored} half-stored consensus runs, recompute after the crash: {recomputed}, "
            f"serving model after the training crash: {still_serves}, web still serving: {web_alive}"
        )
        if not keep:
            _teardown(project, stamp)
        problems = (
            lost or unsubmitted or half_stored or tally.server_errors or not web_alive or recomputed != "completed"
            or not still_serves.startswith("v")
        )
        if problems or saves == 0:
            raise CommandError("the load-and-fault checks failed; see above")


def _phantom_config():
    from modeling.ml.phantoms import PhantomConfig

    return PhantomConfig(width=PHANTOM_SIDE[0], height=PHANTOM_SIDE[1])


def _setup(*, stamp: str, readers: int, per_reader: int):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotation import services
    from annotation.models import Membership
    from consensus.models import ConsensusSettings
    from consensus.services import consensus_settings_get

    from io import BytesIO

    from PIL import Image

    from annotation.models import Joint, Landmark, Project
    from modeling.ml.phantoms import generate_patient

    users = get_user_model().objects
    project = services.project_create(
        name=stamp, slug=stamp, readers_per_radiograph=3, blinded=True, suggestions=Project.Suggestions.ASSISTED
    )
    joints = {joint.name: joint for joint in Joint.objects.filter(scheme=project.scheme, body_part="hand")}
    # Recomputes only when asked: the benchmark times them itself.
    consensus_settings_get(project=project)
    ConsensusSettings.objects.filter(project=project).update(auto_recompute=False)
    lead = users.create_user(username=f"{stamp}-lead")
    services.membership_set(user=lead, project=project, role=Membership.Role.LEAD)
    people = [users.create_user(username=f"{stamp}-r{index:03d}") for index in range(readers)]
    for person in people:
        services.membership_set(user=person, project=project, role=Membership.Role.READER)
    own: dict[int, list[int]] = {person.pk: [] for person in people}
    n_radiographs = max(2, readers * per_reader // 3)
    # Phantom hands with their landmarks: what a model version needs to train and to serve.
    # One more than the readers read: left unread, it shows whether the serving model still serves.
    phantoms = [hand for index in range(n_radiographs // 2 + 1) for hand in generate_patient(index, _phantom_config())]
    check_assignment = None
    for index, phantom in enumerate(phantoms[: n_radiographs + 1]):
        buffer = BytesIO()
        Image.fromarray(phantom.image.astype(np.uint16)).save(buffer, format="PNG", compress_level=1)
        radiograph = services.radiograph_add(
            project=project, pseudonym=f"B{index // 2:05d}", laterality=phantom.laterality, image_bytes=buffer.getvalue(),
            image_suffix="png", width=phantom.width, height=phantom.height,
        ).radiograph
        Landmark.objects.bulk_create(
            Landmark(radiograph=radiograph, joint=joints[name], x=x, y=y, source=Landmark.Source.IMPORT)
            for name, (x, y) in phantom.landmarks.items()
            if name in joints
        )
        if index == n_radiographs:
            check_assignment = services.assignments_create(radiograph=radiograph, readers=[people[0]])[0].pk
            continue
        chosen = [people[(index * 3 + k) % readers] for k in range(min(3, readers))]
        for assignment in services.assignments_create(radiograph=radiograph, readers=chosen):
            own[assignment.reader_id].append(assignment.pk)
    tokens = [(Token.objects.create(user=person).key, own[person.pk]) for person in people]
    return project, tokens, Token.objects.create(user=lead).key, check_assignment


def _teardown(project, stamp: str) -> None:
    from django.contrib.auth import get_user_model

    project.delete()
    get_user_model().objects.filter(username__startswith=f"{stamp}-").delete()


def _worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,inference,training",
         "--concurrency", "2", "--loglevel", "WARNING", "-n", f"bench-{os.getpid()}@%h"],
        cwd=settings.BASE_DIR, env=env, start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    """A warm shutdown of the master (it lets its children finish), then the whole group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # any child left behind
    except ProcessLookupError:
        pass
    process.wait()


def _wait_http(url: str, timeout: float, quiet: bool = False) -> bool:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.3)
    if quiet:
        return False
    raise CommandError(f"{url} did not answer within {timeout:.0f} s")


def _kill_worker_during_recompute(lead: Client, project, processes: dict, env: dict) -> str:
    """Request a recompute, wait until the worker has claimed it, and SIGKILL the worker."""
    from consensus.models import ConsensusSettings

    from consensus.models import ConsensusRun

    before = ConsensusSettings.objects.get(project=project).compute_started_at
    runs_before = ConsensusRun.objects.filter(project=project).count()
    status, body = lead.call("POST", f"/api/projects/{project.pk}/consensus/recompute/", {})
    if status != 202:
        return f"recompute request answered {status}"
    until = time.monotonic() + 60
    while time.monotonic() < until:
        started = ConsensusSettings.objects.get(project=project).compute_started_at
        if started is not None and started != before:
            os.killpg(processes["worker"].pid, signal.SIGKILL)
            processes["worker"].wait()
            finished = ConsensusRun.objects.filter(project=project).count() - runs_before
            when = "during" if finished < 2 else "just after"
            return f"Celery worker killed {when} consensus recompute {body['request']} ({finished} of 2 runs stored)"
        time.sleep(0.02)
    return "the recompute did not start within 60 s; worker not killed"


def _recompute_and_wait(lead: Client, project, *, timeout: float) -> str:
    from consensus.models import ConsensusRun

    from annotation.models import JointArea

    dimensions = JointArea.objects.filter(scheme_id=project.scheme_id).values("dimension").distinct().count()
    before = ConsensusRun.objects.filter(project=project).count()
    status, _ = lead.call("POST", f"/api/projects/{project.pk}/consensus/recompute/", {})
    if status != 202:
        return f"request answered {status}"
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if ConsensusRun.objects.filter(project=project).count() >= before + dimensions:  # one run per dimension
            return "completed"
        time.sleep(0.5)
    return f"not every dimension's run within {timeout:.0f} s"


def _half_stored_runs(project) -> int:
    from consensus.models import ConsensusRun

    # A run's labels span the rows it wrote and the unchanged rows of earlier runs (`run.labels`).
    runs = ConsensusRun.objects.filter(project=project, status=ConsensusRun.Status.OK)
    return sum(1 for run in runs if run.labels.count() != run.n_tasks)


def _serving_model(project):
    """Train a first version in this process, promote it and wait for its suggestions."""
    from modeling import promotion
    from modeling import services as modeling
    from modeling.models import Suggestion

    run = modeling.model_version_request(project=project, epochs=2, config=BENCH_MODEL_CONFIG, enqueue=False)
    version = modeling.model_version_train(run_id=run.pk)
    version = promotion.model_version_promote(version=version)  # its suggestions are made on the worker
    until = time.monotonic() + 180
    while time.monotonic() < until and not Suggestion.objects.filter(model_version=version).exists():
        time.sleep(0.5)
    return version


def _kill_worker_during_training(project, processes: dict) -> str:
    from modeling import services as modeling
    from modeling.models import TrainingRun

    config = {**BENCH_MODEL_CONFIG, "time_budget_s": 600}
    run = modeling.model_version_request(project=project, epochs=200, config=config)
    until = time.monotonic() + 420
    while time.monotonic() < until:
        current = TrainingRun.objects.get(pk=run.pk)
        if current.status == TrainingRun.Status.RUNNING and current.epoch_log:
            os.killpg(processes["worker"].pid, signal.SIGKILL)
            processes["worker"].wait()
            return f"Celery worker killed while training version {run.model_version.number} (epoch {len(current.epoch_log)})"
        time.sleep(0.2)
    return "the training did not start within 420 s; worker not killed"


def _still_serves(reader: Client, assignment: int, project, serving) -> str:
    """The version that served before the crash still serves, and the killed run is marked failed."""
    from django.utils import timezone

    from modeling import services as modeling
    from modeling.models import ModelVersion

    # The run's heartbeat stops with its worker; the periodic check marks it failed once stale.
    modeling.training_runs_fail_stale(now=timezone.now() + modeling.STALE_AFTER + __import__("datetime").timedelta(seconds=1))
    active = ModelVersion.objects.filter(project=project, status=ModelVersion.Status.ACTIVE).first()
    if active is None or active.pk != serving.pk:
        return "no (another version is active)"
    if ModelVersion.objects.filter(project=project, status=ModelVersion.Status.TRAINING).exists():
        return "no (a killed run is still marked training)"
    try:
        status, body = reader.call("GET", f"/api/assignments/{assignment}/suggestions/")
    except OSError as error:
        return f"no ({type(error).__name__})"
    if status != 200 or body.get("model_version") != f"v{serving.number}" or not body.get("suggestions"):
        return f"no (suggestions answered {status}, version {body.get('model_version')})"
    return f"v{serving.number} ({len(body['suggestions'])} suggested areas)"
