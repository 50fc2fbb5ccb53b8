"""The demo seed: a project of phantom patients (both hands and feet) read by simulated readers, for `make demo`."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from PIL import Image

from annotation import services as annotation_services
from annotation.models import Assignment, Joint, JointArea, Landmark, Membership, Project
from annotation.services import GradeInput
from modeling.ml.foot_phantoms import generate_whole_patient
from modeling.ml.phantoms import Phantom, PhantomConfig
from scoring.readers import make_reader_panel

DEMO_PASSWORDS = {"reader": "demo-reader", "lead": "demo-lead", "admin": "demo-admin"}
# A few minutes of training on two CPU cores: enough for landmarks and plausible suggestions.
DEMO_MODEL_CONFIG = {"time_budget_s": 180, "num_threads": 1}


@dataclass(frozen=True)
class DemoSeedReport:
    project: Project
    radiographs: int
    read: int
    seconds: float


def _png16(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint16)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _user(username: str, password: str, **flags):
    user, _ = get_user_model().objects.get_or_create(username=username, defaults=flags)
    user.set_password(password)
    for key, value in flags.items():
        setattr(user, key, value)
    user.save()
    return user


def _store_landmarks(radiograph, phantom: Phantom, joints: dict[str, Joint]) -> None:
    Landmark.objects.bulk_create(
        Landmark(radiograph=radiograph, joint=joints[name], x=x, y=y, source=Landmark.Source.IMPORT)
        for name, (x, y) in phantom.landmarks.items()
        if name in joints
    )


def demo_seed(
    *,
    slug: str = "demo",
    patients: int = 24,
    read_radiographs: int = 30,
    seed: int = 7,
    config: PhantomConfig | None = None,
    train_model: bool = False,
    feet: bool = False,
    read_feet: int | None = None,
) -> DemoSeedReport:
    """A project of phantom patients (two hands, two feet each), three simulated readers, a lead and an admin.

    The first `read_radiographs` hand films and the first `read_feet` foot films (by default half
    as many) are graded and submitted by all three simulated readers (each with its own error
    pattern); the rest wait in the readers' worklists, hands before feet. The hands are exactly
    those of a hands-only seed: `feet=False` (the default, for callers that train and rank the
    hand model) leaves the feet out; `seed_demo` seeds whole patients.
    """
    started = time.perf_counter()
    readers = [_user(f"reader{i}", DEMO_PASSWORDS["reader"]) for i in (1, 2, 3)]
    lead = _user("lead", DEMO_PASSWORDS["lead"])
    _user("admin", DEMO_PASSWORDS["admin"], is_staff=True, is_superuser=True)

    project = Project.objects.filter(slug=slug).first()
    if project is None:
        project = annotation_services.project_create(
            name="Demo: phantom hands", slug=slug, scheme_key="svdh", readers_per_radiograph=3,
            blinded=True, suggestions=Project.Suggestions.ASSISTED,
            description="Synthetic hand radiographs with known damage, graded by three simulated readers.",
        )
    for reader in readers:
        annotation_services.membership_set(user=reader, project=project, role=Membership.Role.READER)
    annotation_services.membership_set(user=lead, project=project, role=Membership.Role.LEAD)
    if project.radiographs.exists():
        return DemoSeedReport(project, project.radiographs.count(), 0, time.perf_counter() - started)

    joints = {
        part: {joint.name: joint for joint in Joint.objects.filter(scheme=project.scheme, body_part=part)}
        for part in ("hand", "foot")
    }
    areas = {
        part: list(JointArea.objects.filter(scheme=project.scheme, body_part=part).select_related("joint"))
        for part in ("hand", "foot")
    }
    # The same three habits on both scales: a reader's foot erosion errors stretch with the 0-10 scale.
    panels = {
        "hand": make_reader_panel(seed, n=3),
        "foot": make_reader_panel(seed, n=3, dimensions={"erosion": 10, "jsn": 4}),
    }
    rng = np.random.default_rng(seed)
    radiographs = []
    for index in range(patients):
        films = generate_whole_patient(seed * 100_003 + index, config)
        for phantom in films if feet else films[:2]:
            part = getattr(phantom, "body_part", "hand")
            with transaction.atomic():
                added = annotation_services.radiograph_add(
                    project=project,
                    pseudonym=f"DEMO-{index + 1:03d}",
                    laterality=phantom.laterality,
                    body_part=part,
                    image_bytes=_png16(phantom.image),
                    image_suffix="png",
                    width=phantom.width,
                    height=phantom.height,
                    metadata={"source": "phantom", "pixel_spacing_mm": phantom.pixel_spacing_mm,
                              "phantom_truth": {dim: dict(g) for dim, g in phantom.grades.items()}},
                )
                _store_landmarks(added.radiograph, phantom, joints[part])
            radiographs.append((added.radiograph, phantom))

    radiographs.sort(key=lambda item: item[0].body_part != "hand")  # stable: patient order kept
    if read_feet is None:
        read_feet = read_radiographs // 2
    hands = [item for item in radiographs if item[0].body_part == "hand"]
    foot_films = [item for item in radiographs if item[0].body_part == "foot"]
    to_read = hands[:read_radiographs] + foot_films[:read_feet]
    annotation_services.project_assign_readers(project=project, radiographs=[r for r, _ in radiographs], readers=readers)
    for priority, (radiograph, _) in enumerate(radiographs):
        Assignment.objects.filter(radiograph=radiograph).update(priority=float(priority))

    for radiograph, phantom in to_read:
        part = radiograph.body_part
        for reader_user, simulated in zip(readers, panels[part]):
            assignment = Assignment.objects.get(radiograph=radiograph, reader=reader_user)
            items = []
            for dimension in ("erosion", "jsn"):
                dim_areas = [a for a in areas[part] if a.dimension == dimension]
                truth = np.array([phantom.grades[dimension][a.joint.name] for a in dim_areas])
                given = simulated.grade(truth, dimension, rng)
                items += [GradeInput(area=a, value=int(g), version=0) for a, g in zip(dim_areas, given)]
            annotation_services.grade_bulk_save(assignment=assignment, user=reader_user, items=items)
            annotation_services.assignment_submit(assignment=assignment, seconds_spent=int(rng.integers(60, 240)))
    if train_model:
        # The committed pre-trained version serves first, so suggestions appear as soon as the
        # worker has run inference; the demo then trains on its own readers' labels, and that
        # version serves only if it beats the pre-trained one (or when none could be installed).
        from modeling.demo_model import demo_model_install
        from modeling.services import model_version_request

        demo_model_install(project=project)

        model_version_request(project=project, epochs=40, config=DEMO_MODEL_CONFIG, auto_promote=True)
    return DemoSeedReport(project, len(radiographs), len(to_read), time.perf_counter() - started)
