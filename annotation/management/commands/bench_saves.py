"""One reader's saves through the grade API, in process on the configured database: the service
time of a save and the SQL it runs, with no web server or network in between."""
from __future__ import annotations

import os
import statistics
import time
import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotation.models import JointArea, Membership, Patient, Project, Radiograph, Visit
from annotation.services import assignments_create, membership_set, project_create


class Command(BaseCommand):
    help = (
        "Time N saves of a few cells by one reader through PUT /api/assignments/{id}/grades/ (Django's test "
        "client, the configured database), print median and p95 service time and the queries of one save, "
        "then remove the project it made."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--saves", type=int, default=200)
        parser.add_argument("--cells", type=int, default=4, help="cells per save")
        parser.add_argument("--show-queries", action="store_true", help="print the SQL of the last save")

    def handle(self, *args, saves: int, cells: int, show_queries: bool, **options) -> None:
        if saves < 2 or not 1 <= cells <= 31:
            raise CommandError("need --saves >= 2 and 1 <= --cells <= 31")
        stamp = uuid.uuid4().hex[:8]
        project = project_create(name=f"Save benchmark {stamp}", slug=f"bench-saves-{stamp}")
        try:
            self._run(project, saves, cells, show_queries)
        finally:
            Project.objects.filter(pk=project.pk).delete()
            get_user_model().objects.filter(username=f"bench-saves-{stamp}").delete()

    def _run(self, project: Project, saves: int, cells: int, show_queries: bool) -> None:
        user = get_user_model().objects.create_user(username=project.slug, password=None)
        membership_set(user=user, project=project, role=Membership.Role.READER)
        visit = Visit.objects.create(patient=Patient.objects.create(project=project, pseudonym="SAVES-1"), timepoint="baseline")
        film = Radiograph.objects.create(
            project=project, visit=visit, laterality="R", image="", width=8, height=8, checksum=project.slug
        )
        (assignment,) = assignments_create(radiograph=film, readers=[user])
        codes = list(
            JointArea.objects.filter(scheme_id=project.scheme_id, body_part="hand").order_by("dimension", "order").values_list("code", flat=True)
        )
        client = Client()
        client.force_login(user)
        url = reverse("api-grade-bulk-save", args=[assignment.pk])
        versions: dict[str, int] = {}
        times, cpu_times, counts, last = [], [], [], None
        for i in range(saves):
            picked = [codes[(i * cells + j) % len(codes)] for j in range(cells)]
            body = {"grades": [{"area": c, "value": (i + j) % 2, "version": versions.get(c, 0)} for j, c in enumerate(picked)]}
            with CaptureQueriesContext(connection) as queries:
                started, cpu = time.perf_counter(), time.process_time()
                response = client.put(url, body, content_type="application/json")
                times.append(time.perf_counter() - started)
                cpu_times.append(time.process_time() - cpu)
            if response.status_code != 200:
                raise CommandError(f"save {i} answered {response.status_code}: {response.content[:200]!r}")
            for grade in response.json()["grades"]:
                versions[grade["area"]] = grade["version"]
            counts.append(len(queries.captured_queries))
            last = queries.captured_queries
        times_ms = sorted(t * 1000 for t in times[1:])  # the first save warms caches
        p95 = times_ms[min(len(times_ms) - 1, int(0.95 * len(times_ms)))]
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        self.stdout.write(
            f"{saves} saves of {cells} cells, one reader, {connection.vendor}: median {statistics.median(times_ms):.1f} ms, "
            f"p95 {p95:.1f} ms, {statistics.median(counts):.0f} queries a save (load average {load}); "
            # CPU time of this process alone: what a save costs Django whatever the load, which
            # stretches the wall time by the wait for a core.
            f"CPU in Django median {statistics.median(cpu_times[1:]) * 1000:.1f} ms"
        )
        if show_queries and last:
            for query in last:
                self.stdout.write(f"  {query['time']} s  {query['sql'][:160]}")
