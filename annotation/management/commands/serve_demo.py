"""Run the demo: the web server and a Celery worker on the serverless filesystem broker."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from annotation.models import Project


class Command(BaseCommand):
    help = "Start the development web server and a Celery worker together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--seed", action="store_true",
            help="run the `seed_demo` command while the web server and the worker start (what `make demo` "
                 "does); a failed seed stops the demo",
        )
        parser.add_argument("--migrate", action="store_true", help="run `migrate` first, while the worker starts")

    def handle(self, *args, host: str, port: int, seed: bool, migrate: bool, **options):
        root = settings.BASE_DIR
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=WARNING",
             "-Q", "default,inference,training", "--concurrency=2"],
            cwd=root,
        )
        if migrate:
            # While the worker starts (seconds of imports; it touches the database only when a task
            # comes, and tasks come from the seed after this), and in this process, already loaded.
            self.stdout.write("Migrating the database while the worker starts ...")
            try:
                call_command("migrate", interactive=False, stdout=self.stdout, stderr=self.stderr)
            except BaseException:
                worker.terminate()
                worker.wait(timeout=15)
                raise
        # The checks ran in `migrate`; skipping them here starts the web server sooner.
        web = subprocess.Popen([sys.executable, "manage.py", "runserver", f"{host}:{port}", "--noreload", "--skip-checks"], cwd=root)
        # Seeding beside the servers' start-up instead of before it: both take seconds, and the
        # seed commits each film complete in one transaction, so the web server never shows a
        # half-written film. In this process, which has Django loaded already (a process of its
        # own would spend seconds starting), and by the command's name, as a user would run it.
        seeder = threading.Thread(target=self._seed, daemon=True) if seed else None
        self._seed_error: BaseException | None = None
        if seeder is None:
            self._print_banner(host, port)
        else:
            self.stdout.write("Seeding the demo while the web server and the worker start ...")
            seeder.start()
        stopping = False
        failed = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and web.poll() is None and worker.poll() is None:
                if seeder is not None and not seeder.is_alive():
                    if self._seed_error is not None:
                        self.stderr.write(f"seed_demo failed ({self._seed_error}): stopping the demo.")
                        failed = True
                        break
                    seeder = None
                    self._print_banner(host, port)
                time.sleep(0.5)
        finally:
            # A seed still running stops with the process; its open transaction is rolled back.
            for process in (web, worker):
                if process.poll() is None:
                    process.terminate()
            for process in (web, worker):
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.stdout.write("Demo stopped.")
        if failed:
            sys.exit(1)

    def _seed(self) -> None:
        try:
            call_command("seed_demo", stdout=self.stdout, stderr=self.stderr)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread, which stops the demo
            self._seed_error = error
        finally:
            connections.close_all()

    def _print_banner(self, host: str, port: int) -> None:
        projects = ", ".join(Project.objects.values_list("slug", flat=True)) or "none (run `manage.py seed_demo`)"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"  RA joint scoring demo: http://{host}:{port}/",
                    f"  API docs:              http://{host}:{port}/api/docs/",
                    f"  Admin:                 http://{host}:{port}/admin/",
                    f"  Projects:              {projects}",
                    "  Logins (user / password): reader1..reader3 / demo-reader, lead / demo-lead, admin / demo-admin",
                    "  Research use only. Ctrl-C stops the web server and the worker.",
                    "",
                ]
            )
        )
