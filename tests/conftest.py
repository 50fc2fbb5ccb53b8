"""Shared personas and a small project.

Who may see what:
- reader_a, reader_b: readers of `alpha` (blinded); both read radiograph r1, only reader_b reads r2.
  Each sees only their own grades.
- lead: lead of `alpha`; sees every reader's work in alpha.
- other_lead: lead of `beta`; sees nothing of alpha.
- outsider: logged in, member of nothing; sees nothing.
- staff: the operator; sees every project through the API and the admin.
"""
from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from PIL import Image
from rest_framework.test import APIClient

from annotation import services
from annotation.models import Joint, JointArea, Membership, Radiograph, Scheme
from annotation.schemes import schemes_load
from config import celery_app

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # PBKDF2 costs a large part of a second per persona on these small machines; tests need no
    # strong hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # DICOM import refuses the committed demo key; tests import with a key of their own.
    settings.PSEUDONYM_KEY = "tests-only-pseudonym-key-0123456789abcdef"


@pytest.fixture(autouse=True, scope="session")
def _celery_in_process():
    # API and service tests check a task's effect in the same process; tests/integration turns this
    # off and runs a real worker against Redis and PostgreSQL.
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def png_bytes(width: int = 64, height: int = 80, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 65535, size=(height, width), dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_radiograph(project, pseudonym: str, laterality: str = "R") -> Radiograph:
    return services.radiograph_add(
        project=project,
        pseudonym=pseudonym,
        laterality=laterality,
        image_bytes=png_bytes(seed=next(_counter)),
        image_suffix="png",
        width=64,
        height=80,
    ).radiograph


def make_user(username: str, **extra):
    return get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)


@pytest.fixture
def schemes(db):
    """The scheme rows from the data migration; transactional tests flush them, so reload."""
    if not Scheme.objects.exists():
        schemes_load(scheme_model=Scheme, joint_model=Joint, area_model=JointArea)


@pytest.fixture
def world(schemes):
    """Two projects and every persona; returns a namespace of the objects tests need."""
    alpha = services.project_create(name="Alpha Hands Study", slug="alpha", readers_per_radiograph=2, blinded=True)
    beta = services.project_create(name="Beta Feet Study", slug="beta", readers_per_radiograph=2)
    users = {name: make_user(name) for name in ["reader_a", "reader_b", "lead", "other_lead", "outsider"]}
    users["staff"] = make_user("staff", is_staff=True, is_superuser=True)
    services.membership_set(user=users["reader_a"], project=alpha, role=Membership.Role.READER)
    services.membership_set(user=users["reader_b"], project=alpha, role=Membership.Role.READER)
    services.membership_set(user=users["lead"], project=alpha, role=Membership.Role.LEAD)
    services.membership_set(user=users["other_lead"], project=beta, role=Membership.Role.LEAD)
    r1 = make_radiograph(alpha, "ALPHA-PSEUDO-001")
    r2 = make_radiograph(alpha, "ALPHA-PSEUDO-002", laterality="L")
    b1 = make_radiograph(beta, "BETA-PSEUDO-001")
    (a_own,) = services.assignments_create(radiograph=r1, readers=[users["reader_a"]])
    (b_on_r1,) = services.assignments_create(radiograph=r1, readers=[users["reader_b"]])
    (b_on_r2,) = services.assignments_create(radiograph=r2, readers=[users["reader_b"]], priority=1.0)

    class World:
        pass

    w = World()
    w.alpha, w.beta, w.users, w.r1, w.r2, w.b1 = alpha, beta, users, r1, r2, b1
    w.a_own, w.b_on_r1, w.b_on_r2 = a_own, b_on_r1, b_on_r2
    return w


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user=user)
    return client
