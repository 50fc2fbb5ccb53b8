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
    foot_time_budget_s: float | None = None,
    log: Callable[[str], Any] = print,
    phantoms: Any = None,
) -> str:
    """Seed a scratch project of whole patients whose every film (both hands, both feet) is read by
    three simulated readers, fuse the grades (Dawid-Skene, as the platform does), train a version
    on the consensus exactly as `train_model` does (a model per body part), and write its
    checkpoint to `out` with held-out figures and where it came from.

    `time_budget_s` is the hands' training budget and, unless `foot_time_budget_s` gives the feet
    their own, the feet's too. `phantoms` (a PhantomConfig) changes the image size, for tests; the
    demo model uses the default. Held-out figures, per body part: the checkpoint's test patients
    against the consensus (what the platform can know) and against the phantom truth (what a
    reader of the demo cannot know).
    """
    from consensus.models import ConsensusRun
    from consensus.services import consensus_compute
    from modeling.ml.body_parts import checkpoint_body_parts, part_checkpoint

    from .demo import DEMO_RECIPE, demo_seed
    from .selectors import model_version_checkpoint
    from .services import model_version_request, model_version_train

    if Project.objects.filter(slug=slug).exists():
        raise ValueError(f"project '{slug}' exists already: build the demo model on a scratch database")
    log(f"Seeding {patients} phantom patients, every hand and foot read by three simulated readers ...")
    project = demo_seed(slug=slug, patients=patients, read_radiographs=2 * patients, seed=seed, config=phantoms,
                        severity_max=BUILD_SEVERITY_MAX, feet=True, read_feet=2 * patients).project
    for dimension in ("erosion", "jsn"):
        run = consensus_compute(project=project, dimension=dimension, announce=False)
        if run.status != ConsensusRun.Status.OK:
            raise ValueError(f"the {dimension} consensus failed: {run.error}")

    config = {**DEMO_RECIPE, **{k: v for k, v in {"time_budget_s": time_budget_s, "num_threads": num_threads}.items() if v is not None}}
    if foot_time_budget_s is not None:
        config["part_time_budget_s"] = {"foot": foot_time_budget_s}
    log(f"Training on the consensus ({epochs} epochs at most, time budget {time_budget_s or 'none'}"
        + (f", feet {foot_time_budget_s:g} s" if foot_time_budget_s is not None else "") + ") ...")
    run = model_version_request(project=project, epochs=epochs, config=config, enqueue=False)
    version = model_version_train(run_id=run.pk)
    if version.status == ModelVersion.Status.FAILED:
        raise ValueError(f"training failed: {version.training_runs.first().error}")

    checkpoint = model_version_checkpoint(version=version)
    pseudonyms = {str(pk): name for pk, name in Patient.objects.filter(project=project).values_list("pk", "pseudonym")}
    by_part = checkpoint.setdefault("metrics", {}).setdefault("body_parts", {})
    for part in checkpoint_body_parts(checkpoint):
        part_ckpt = part_checkpoint(checkpoint, part)
        # Patient ids of a scratch database mean nothing elsewhere: named by pseudonym under the
        # build project, they can never match a patient of the project that installs the checkpoint.
        part_ckpt["split"] = {
            name: [f"{slug}/{pseudonyms[str(p)]}" for p in ids] for name, ids in (part_ckpt.get("split") or {}).items()
        }
        log(f"Scoring the held-out {part} films against the phantom truth ...")
        truth = _test_truth(project=project, checkpoint=part_ckpt, body_part=part)
        part_ckpt.setdefault("metrics", {})["test_truth"] = truth
        by_part.setdefault(part, part_ckpt["metrics"])["test_truth"] = truth
    checkpoint["provenance"] = {
        "command": _build_command(project=slug, patients=patients, seed=seed, epochs=epochs,
                                  time_budget=time_budget_s, foot_time_budget=foot_time_budget_s, threads=num_threads),
        "patients": patients,
        "seed": seed,
        "labels": "consensus of three simulated readers (Dawid-Skene posteriors)",
        "severity": f"spread evenly from 0 to {BUILD_SEVERITY_MAX:g} over successive patients",
        "consensus_run_ids": version.consensus_run_ids,
        "built_at": timezone.now().isoformat(),
    }
    from modeling.ml.train import save_checkpoint

    save_checkpoint(checkpoint, out)
    log(f"Written to {out} ({out.stat().st_size / 1e6:.1f} MB).")
    return demo_model_describe(checkpoint)


def _test_truth(*, project: Project, checkpoint: dict, body_part: str) -> dict:
    """One body part's model on its held-out films, scored against the phantoms' true grades."""
    from modeling.ml.inference import load_model
    from modeling.ml.train import evaluate_hands

    from .samples import evaluation_samples

    test_patients = {p.split("/", 1)[1] for p in (checkpoint.get("split") or {}).get("test", [])}
    test = list(
        Radiograph.objects.filter(project=project, body_part=body_part, visit__patient__pseudonym__in=test_patients)
        .select_related("visit").order_by("pk")
    )
    samples = evaluation_samples(project=project, radiographs=test)
    if len(samples) != len(test):  # a film without consensus or landmarks: pair them one by one
        pairs = [(r, s) for r in test for s in evaluation_samples(project=project, radiographs=[r])]
    else:
        pairs = list(zip(test, samples))
    for radiograph, sample in pairs:
        truth = (radiograph.metadata or {}).get("phantom_truth") or {}
        sample["targets"] = {(joint, dim): grade for dim, grades in truth.items() for joint, grade in grades.items()}
    return jsonable(evaluate_hands(load_model(checkpoint), [s for _, s in pairs]))


# How each body part's films are named in the printed figures (the reports count them as "hands").
PART_FILMS = {"hand": "hands", "foot": "feet"}


def demo_model_describe(checkpoint: dict) -> str:
    """Held-out figures with their counts, a paragraph per body part, for the command line."""
    top = checkpoint.get("metrics") or {}
    parts = top.get("body_parts") or {"hand": top}
    lines = []
    for part, films in PART_FILMS.items():
        metrics = top if part == "hand" and "hand" in parts else parts.get(part)
        if metrics is None:
            continue
        grader = metrics.get("grader") or {}
        lines.append(f"{films}: {metrics.get('hands')}, epochs run: {metrics.get('epochs_run')}, "
                     f"training seconds: {metrics.get('train_seconds', 0):.0f}"
                     + (f" (stage 2 by the {grader['recipe']} recipe: {grader.get('epochs_run')} epochs, best {grader.get('best_epoch')})"
                        if grader.get("recipe") else ""))
        for key, against in (("test", "consensus"), ("test_truth", "phantom truth")):
            report = metrics.get(key) or {}
            if not report.get("hands"):
                lines.append(f"{key}: no held-out {films}")
                continue
            line = (f"held-out test, against the {against}: {report['hands']} {films}, "
                    f"localisation {report['localisation_accuracy']:.3f}")
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
