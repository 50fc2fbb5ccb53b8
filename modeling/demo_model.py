"""The demo's pre-trained model: how it is built (phantoms, simulated readers, consensus, the
platform's own training) and how `seed_demo` installs it as a project's first serving version.

The checkpoint is committed (`modeling/data/demo_model.pt`), so a fresh demo serves suggestions
as soon as its worker has run inference, instead of after minutes of training on the CPU. The
demo then retrains on its own readers' consensus as every project does; the new version serves
only if it beats this one on the demo's validation patients.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotation.models import Patient, Project, Radiograph
from scoring.jsonable import jsonable

from .models import ModelVersion

logger = logging.getLogger(__name__)

DEMO_MODEL_PATH = Path(settings.BASE_DIR) / "modeling" / "data" / "demo_model.pt"
# The exact command that wrote the committed checkpoint (also the Makefile's `demo-model` target).
DEMO_MODEL_COMMAND = "make demo-model"
# The build's patients have disease levels spread evenly from none to severe (0, 0.5, ... 3 on
# the generator's scale, patient after patient): with the generator's own draw most of 60 patients
# have little damage, the grader has few damaged joints to learn from, and a held-out kappa over
# a test set of nearly all zeros says nothing.
BUILD_SEVERITY_MAX = 3.0


def _build_command(**args: Any) -> str:
    flags = " ".join(f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{k.replace('_', '-')} {v}"
                     for k, v in args.items() if v is not None)
    return f"manage.py build_demo_model {flags}"


def demo_model_build(
    *,
    out: Path,
    slug: str,
    patients: int,
    seed: int,
    epochs: int,
    time_budget_s: float | None,
    num_threads: int | None,
    log: Callable[[str], Any] = print,
    phantoms: Any = None,
) -> str:
    """Seed a scratch project whose every hand is read by three simulated readers, fuse the grades
    (Dawid-Skene, as the platform does), train a version on the consensus exactly as `train_model`
    does, and write its checkpoint to `out` with held-out figures and where it came from.

    `phantoms` (a PhantomConfig) changes the image size, for tests; the demo model uses the default.
    Held-out figures: the checkpoint's test patients against the consensus (what the platform
    can know) and against the phantom truth (what a reader of the demo cannot know).
    """
    from consensus.models import ConsensusRun
    from consensus.services import consensus_compute
    from modeling.ml.inference import load_model
    from modeling.ml.train import evaluate_hands, save_checkpoint

    from .demo import demo_seed
    from .samples import evaluation_samples
    from .selectors import model_version_checkpoint
    from .services import model_version_request, model_version_train

    if Project.objects.filter(slug=slug).exists():
        raise ValueError(f"project '{slug}' exists already: build the demo model on a scratch database")
    log(f"Seeding {patients} phantom patients, every hand read by three simulated readers ...")
    project = demo_seed(slug=slug, patients=patients, read_radiographs=2 * patients, seed=seed, config=phantoms,
                        severity_max=BUILD_SEVERITY_MAX).project
    for dimension in ("erosion", "jsn"):
        run = consensus_compute(project=project, dimension=dimension, announce=False)
        if run.status != ConsensusRun.Status.OK:
            raise ValueError(f"the {dimension} consensus failed: {run.error}")
    from .demo import DEMO_RECIPE

    config = {**DEMO_RECIPE, **{k: v for k, v in {"time_budget_s": time_budget_s, "num_threads": num_threads}.items() if v is not None}}
    log(f"Training on the consensus ({epochs} epochs at most, time budget {time_budget_s or 'none'}) ...")
    run = model_version_request(project=project, epochs=epochs, config=config, enqueue=False)
    version = model_version_train(run_id=run.pk)
    if version.status == ModelVersion.Status.FAILED:
        raise ValueError(f"training failed: {version.training_runs.first().error}")

    checkpoint = model_version_checkpoint(version=version)
    pseudonyms = {str(pk): name for pk, name in Patient.objects.filter(project=project).values_list("pk", "pseudonym")}
    # Patient ids of a scratch database mean nothing elsewhere: named by pseudonym under the build
    # project, they can never match a patient of the project that installs the checkpoint.
    checkpoint["split"] = {
        part: [f"{slug}/{pseudonyms[str(p)]}" for p in ids] for part, ids in (checkpoint.get("split") or {}).items()
    }
    test_patients = {p.split("/", 1)[1] for p in checkpoint["split"].get("test", [])}
    test = list(
        Radiograph.objects.filter(project=project, body_part="hand", visit__patient__pseudonym__in=test_patients)
        .select_related("visit").order_by("pk")
    )
    truth_samples = []
    for radiograph in test:
        truth = (radiograph.metadata or {}).get("phantom_truth") or {}
        for sample in evaluation_samples(project=project, radiographs=[radiograph]):
            sample["targets"] = {(joint, dim): grade for dim, grades in truth.items() for joint, grade in grades.items()}
            truth_samples.append(sample)
    checkpoint["metrics"]["test_truth"] = jsonable(evaluate_hands(load_model(checkpoint), truth_samples))
    checkpoint["provenance"] = {
        "command": _build_command(project=slug, patients=patients, seed=seed, epochs=epochs,
                                  time_budget=time_budget_s, threads=num_threads),
        "patients": patients,
        "seed": seed,
        "labels": "consensus of three simulated readers (Dawid-Skene posteriors)",
        "severity": f"spread evenly from 0 to {BUILD_SEVERITY_MAX:g} over successive patients",
        "consensus_run_ids": version.consensus_run_ids,
        "built_at": timezone.now().isoformat(),
    }
    save_checkpoint(checkpoint, out)
    log(f"Written to {out} ({out.stat().st_size / 1e6:.1f} MB).")
    return demo_model_describe(checkpoint)


def demo_model_describe(checkpoint: dict) -> str:
    """One paragraph of held-out figures with their counts, for the command line."""
    metrics = checkpoint.get("metrics") or {}
    grader = metrics.get("grader") or {}
    lines = [f"hands: {metrics.get('hands')}, epochs run: {metrics.get('epochs_run')}, "
             f"training seconds: {metrics.get('train_seconds', 0):.0f}"
             + (f" (stage 2 by the {grader['recipe']} recipe: {grader.get('epochs_run')} epochs, best {grader.get('best_epoch')})"
                if grader.get("recipe") else "")]
    for part, against in (("test", "consensus"), ("test_truth", "phantom truth")):
        report = metrics.get(part) or {}
        if not report.get("hands"):
            lines.append(f"{part}: no held-out hands")
            continue
        line = f"held-out test, against the {against}: {report['hands']} hands, localisation {report['localisation_accuracy']:.3f}"
        for dim in ("erosion", "jsn"):
            d = report.get(dim) or {}
            line += (f"; {dim} {d.get('n')} areas: quadratic kappa {d.get('qwk', float('nan')):.3f}, "
                     f"weighted accuracy {d.get('weighted_accuracy', float('nan')):.3f}, within one {d.get('within_one', float('nan')):.3f}")
        lines.append(line)
    return "\n".join(lines)


def demo_model_install(*, project: Project, path: Path = DEMO_MODEL_PATH) -> ModelVersion | None:
    """Store the committed checkpoint as the project's next version and promote it.

    Tolerant by design: a missing file, a checkpoint of another format or of another scheme is
    logged and skipped (None), and the demo falls back to training its first version itself.
    """
    from modeling.ml.inference import load_model
    from modeling.ml.train import checkpoint_from_bytes

    from .promotion import model_version_promote
    from .samples import scheme_for

    try:
        data = path.read_bytes()
        checkpoint = checkpoint_from_bytes(data)
        load_model(checkpoint)  # refuses another format or weights that do not fit the config
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint means: train instead
        logger.warning("demo model %s not installed: %s: %s", path, type(error).__name__, error)
        return None
    ours = scheme_for(project)
    theirs = checkpoint.get("scheme") or {}
    if theirs.get("landmarks") != ours.get("landmarks") or theirs.get("areas") != ours.get("areas"):
        logger.warning("demo model %s not installed: it was trained for another scheme", path)
        return None
    with transaction.atomic():
        number = (ModelVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
        version = ModelVersion(
            project=project, number=number, status=ModelVersion.Status.READY,
            label_source=ModelVersion.LabelSource.CONSENSUS,
            config=jsonable(checkpoint.get("config") or {}),
            metrics={**jsonable(checkpoint.get("metrics") or {}), "pretrained": jsonable(checkpoint.get("provenance") or {})},
            trained_at=timezone.now(),
        )
        version.checkpoint.save(f"v{number}.pt", ContentFile(data), save=False)
        version.save()
        return model_version_promote(version=version)
