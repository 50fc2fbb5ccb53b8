"""The demo seed: a project of phantom patients (both hands and feet) read by simulated readers, for `make demo`."""
from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from PIL import Image

from annotation import services as annotation_services
from annotation.models import Assignment, Joint, JointArea, Landmark, Membership, Project
from annotation.services import GradeInput
from modeling.ml.foot_phantoms import generate_whole_patient
from modeling.ml.phantoms import Phantom, PhantomConfig, generate_patient
from scoring.readers import make_reader_panel

DEMO_PASSWORDS = {"reader": "demo-reader", "lead": "demo-lead", "admin": "demo-admin"}
# The demo's training recipe, for its pre-trained model and its own retraining alike: the
# platform's two-stage training, its stage 2 by the CPU benchmark's grader recipe
# (modeling.ml.crops: 48 px crops over the same 0.3 x hand-size side, widths 16/32/64, 64 hidden
# units, class-balanced sampling, early stopping on balanced accuracy). In the joint loop the
# grader stopped on a noisy validation loss after a few epochs and suggested one grade everywhere;
# a larger validation share makes early stopping steadier still.
DEMO_RECIPE = {
    "grader_recipe": "crops",
    "grading": {"crop_size": 48, "widths": [16, 32, 64], "hidden": 64},
    "grading_batch": 64,
    "val_fraction": 0.15,
}
# A few minutes of training on two CPU cores: enough for landmarks and plausible suggestions.
DEMO_MODEL_CONFIG = {**DEMO_RECIPE, "time_budget_s": 180, "num_threads": 1}


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


def _password_hashes() -> dict[str, str]:
    """One hash per demo password, the three computed at once: each costs a good part of a second
    of key stretching (which releases the GIL), and the demo's first minute counts."""
    with ThreadPoolExecutor(len(DEMO_PASSWORDS)) as pool:
        return dict(zip(DEMO_PASSWORDS, pool.map(make_password, DEMO_PASSWORDS.values())))


def _user(username: str, password_hash: str, **flags):
    user, _ = get_user_model().objects.get_or_create(username=username, defaults=flags)
    user.password = password_hash
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


@dataclass(frozen=True)
class DemoPlan:
    """What a demo seed holds when it is complete; the background part of a seed is given this."""

    patients: int
    read_radiographs: int
    read_feet: int
    seed: int
    feet: bool
    train_model: bool
    config: PhantomConfig | None = None
    # None: each patient's disease level drawn as the generator does (most have little damage).
    # A number: levels spread evenly from 0 to it over successive patients, so that a small
    # cohort (the demo model's build) has damaged joints to learn from and to be scored on.
    severity_max: float | None = None

    def severity(self, index: int) -> float | None:
        return None if self.severity_max is None else self.severity_max * (index % 7) / 6

    def films(self) -> int:
        return self.patients * (4 if self.feet else 2)

    def read(self, part: str, index: int, side: int) -> bool:
        """Is film `side` (0 left, 1 right) of patient `index` read by all three readers?"""
        return 2 * index + side < (self.read_radiographs if part == "hand" else self.read_feet)

    def priority(self, part: str, index: int, side: int) -> float:
        """Worklist place: hands before feet, patient order, left before right."""
        return float(2 * index + side + (0 if part == "hand" else 2 * self.patients))


def _patient_films(plan: DemoPlan, index: int) -> list:
    severity = plan.severity(index)
    if plan.feet:
        return list(generate_whole_patient(plan.seed * 100_003 + index, plan.config, severity=severity))
    # Exactly the hands of the whole patient, without the cost of drawing its feet.
    return list(generate_patient(plan.seed * 100_003 + index, plan.config, severity=severity))


def _context(project: Project) -> dict:
    return {
        "readers": [get_user_model().objects.get(username=f"reader{i}") for i in (1, 2, 3)],
        "joints": {
            part: {joint.name: joint for joint in Joint.objects.filter(scheme=project.scheme, body_part=part)}
            for part in ("hand", "foot")
        },
        "areas": {
            part: list(JointArea.objects.filter(scheme=project.scheme, body_part=part).select_related("joint"))
            for part in ("hand", "foot")
        },
    }


def _film_add(*, project: Project, plan: DemoPlan, context: dict, index: int, phantom, read: bool,
              panels: dict, rngs: dict) -> bool:
    """One film, complete or not at all: pixels, landmarks, its three readers and, when it is one
    of the read films, the three simulated reads submitted. One transaction, so a reader never
    finds a film without its landmarks, nor one of the simulated reads half written in their
    worklist. False when the film was there already (a seed resumed after an interruption)."""
    try:
        return _film_add_atomic(project=project, plan=plan, context=context, index=index, phantom=phantom, read=read,
                                panels=panels, rngs=rngs)
    except IntegrityError:
        # A second seed task (a resumed demo's, redelivered beside the new one) added the film
        # first; this film's transaction was rolled back whole.
        return False


@transaction.atomic
def _film_add_atomic(*, project: Project, plan: DemoPlan, context: dict, index: int, phantom, read: bool,
                     panels: dict, rngs: dict) -> bool:
    part = getattr(phantom, "body_part", "hand")
    side = 0 if phantom.laterality == "L" else 1
    readers = context["readers"]
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
    if not added.created:
        return False
    radiograph = added.radiograph
    _store_landmarks(radiograph, phantom, context["joints"][part])
    annotation_services.project_assign_readers(project=project, radiographs=[radiograph], readers=readers)
    Assignment.objects.filter(radiograph=radiograph).update(priority=plan.priority(part, index, side))
    if read:
        for reader_user, simulated in zip(readers, panels[part]):
            assignment = Assignment.objects.get(radiograph=radiograph, reader=reader_user)
            items = []
            for dimension in ("erosion", "jsn"):
                dim_areas = [a for a in context["areas"][part] if a.dimension == dimension]
                truth = np.array([phantom.grades[dimension][a.joint.name] for a in dim_areas])
                given = simulated.grade(truth, dimension, rngs[part])
                items += [GradeInput(area=a, value=int(g), version=0) for a, g in zip(dim_areas, given)]
            annotation_services.grade_bulk_save(assignment=assignment, user=reader_user, items=items)
            annotation_services.assignment_submit(assignment=assignment, seconds_spent=int(rngs[part].integers(60, 240)))
        # Read in the same transaction (the worker's recount after each submission agrees), so
        # the model's inference never takes a read film for one still being read.
        annotation_services.radiograph_progress_update(radiograph_id=radiograph.pk)
    return True


def _first_unread_patient(plan: DemoPlan) -> int | None:
    """The patient whose hand film comes first in the readers' worklists once the reads are done."""
    index = plan.read_radiographs // 2
    return index if index < plan.patients else None


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
    background: bool = False,
    severity_max: float | None = None,
) -> DemoSeedReport:
    """A project of phantom patients (two hands, two feet each), three simulated readers, a lead and an admin.

    The first `read_radiographs` hand films and the first `read_feet` foot films (by default half
    as many) are graded and submitted by all three simulated readers (each with its own error
    pattern); the rest wait in the readers' worklists, hands before feet. The hands are exactly
    those of a hands-only seed: `feet=False` (the default, for callers that train and rank the
    hand model) leaves the feet out; `seed_demo` seeds whole patients.

    `background=True` (what `make demo` uses) seeds only what the first minute needs before it
    returns: the logins, the project and the unread hands at the top of the readers' worklists. A
    Celery task (`demo_seed_rest_task`) beside the running demo installs the pre-trained version
    first (its inference of those hands is the worker's next task) and then seeds the other films,
    one complete film per transaction. Either way the finished project is the same, reads included.
    """
    started = time.perf_counter()
    if read_feet is None:
        read_feet = read_radiographs // 2
    plan = DemoPlan(patients=patients, read_radiographs=read_radiographs, read_feet=read_feet, seed=seed,
                    feet=feet, train_model=train_model, config=config, severity_max=severity_max)
    hashes = _password_hashes()
    readers = [_user(f"reader{i}", hashes["reader"]) for i in (1, 2, 3)]
    lead = _user("lead", hashes["lead"])
    _user("admin", hashes["admin"], is_staff=True, is_superuser=True)

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
    existing = project.radiographs.count()
    if existing:
        if background and existing < plan.films():
            # A demo stopped while its background seed ran: that seed resumes where it stopped.
            _rest_enqueue(project=project, plan=plan)
        return DemoSeedReport(project, existing, 0, time.perf_counter() - started)

    if not background:
        read = demo_seed_rest(project_id=project.pk, plan=plan)
        return DemoSeedReport(project, project.radiographs.count(), read, time.perf_counter() - started)

    first = _first_unread_patient(plan)
    if first is not None:
        context = _context(project)
        # Its hands only: they come first in the worklists, and its feet cost twice their time.
        for phantom in _patient_films(replace(plan, feet=False), first):
            side = 0 if phantom.laterality == "L" else 1
            if not plan.read(getattr(phantom, "body_part", "hand"), first, side):
                _film_add(project=project, plan=plan, context=context, index=first, phantom=phantom, read=False,
                          panels={}, rngs={})
    _rest_enqueue(project=project, plan=plan)
    return DemoSeedReport(project, project.radiographs.count(), 0, time.perf_counter() - started)


def _rest_enqueue(*, project: Project, plan: DemoPlan) -> None:
    from .tasks import demo_seed_rest_task

    payload = demo_plan_to_dict(plan)
    transaction.on_commit(lambda: demo_seed_rest_task.delay(project.pk, payload))


def demo_plan_to_dict(plan: DemoPlan) -> dict:
    """The plan as a task argument (JSON)."""
    return asdict(plan)  # nested: the PhantomConfig becomes a dict as well


def demo_plan_from_dict(payload: dict) -> DemoPlan:
    config = payload.get("config")
    return DemoPlan(**{**payload, "config": PhantomConfig(**config) if config else None})


def demo_seed_rest(*, project_id: int, plan: DemoPlan, model_first: bool = False) -> int:
    """Seed every film of the plan that the project lacks, in patient order, each film complete in
    its own transaction; then, once, the model's part: the pre-trained version (or its inference
    for the films added since it was installed) and the retraining on the readers' consensus.

    `model_first` installs the pre-trained version before the films (the background seed: the
    films already there are at the top of the worklists and get suggestions while the rest is
    seeded). Returns how many films it added as read. Safe to run again after an interruption:
    films already there are skipped (by their pixels' checksum).
    """
    project = Project.objects.get(pk=project_id)
    if plan.train_model and model_first and not project.model_versions.exists():
        from modeling.demo_model import demo_model_install

        demo_model_install(project=project)
    context = _context(project)
    # The same three habits on both scales: a reader's foot erosion errors stretch with the 0-10 scale.
    panels = {
        "hand": make_reader_panel(plan.seed, n=3),
        "foot": make_reader_panel(plan.seed, n=3, dimensions={"erosion": 10, "jsn": 4}),
    }
    # Hands and feet draw from their own streams, so the hands' reads are those of a hands-only seed.
    rngs = {"hand": np.random.default_rng(plan.seed), "foot": np.random.default_rng([plan.seed, 1])}
    read = 0
    for index in range(plan.patients):
        pseudonym = f"DEMO-{index + 1:03d}"
        if project.radiographs.filter(visit__patient__pseudonym=pseudonym).count() == (4 if plan.feet else 2):
            continue
        for phantom in _patient_films(plan, index):
            part = getattr(phantom, "body_part", "hand")
            is_read = plan.read(part, index, 0 if phantom.laterality == "L" else 1)
            added = _film_add(project=project, plan=plan, context=context, index=index, phantom=phantom,
                              read=is_read, panels=panels, rngs=rngs)
            read += added and is_read
    if plan.train_model:
        _model_finish(project=project)
    return read


def _model_finish(*, project: Project) -> None:
    """The pre-trained version serves (its inference covers every film still being read), and the
    demo trains on its own readers' labels; that version serves only if it beats the pre-trained
    one (or when none could be installed)."""
    from modeling.demo_model import demo_model_install
    from modeling.models import ModelVersion
    from modeling.services import model_version_request, suggestions_predict

    pretrained = ModelVersion.objects.filter(project=project, metrics__has_key="pretrained").order_by("number").first()
    if pretrained is None:
        demo_model_install(project=project)
    elif pretrained.status == ModelVersion.Status.ACTIVE:
        # Films added after the version was installed have no suggestions yet.
        suggestions_predict(model_version_id=pretrained.pk, only_missing=True)
    if not ModelVersion.objects.filter(project=project).exclude(metrics__has_key="pretrained").exists():
        model_version_request(project=project, epochs=40, config=DEMO_MODEL_CONFIG, auto_promote=True)
