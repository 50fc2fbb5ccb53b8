"""The model benchmark per body part: hands and feet of the same phantom patients, side by side.

`python -m modeling.ml.bench --body-parts hand,foot ...` lands here. Every patient is a whole
patient (`foot_phantoms.generate_whole_patient`: two hands, exactly the hands `bench` draws, and
two feet whose damage follows them). For each body part:

- **localisation**: stage 1 alone (`train.train_one_epoch` with grading off) trains on the
  training films' landmark positions (geometry, as a reader places them; no grade involved),
  early-stops on a held-out share of the training patients, and is scored end to end on the
  test films: point error in original pixels, the share within `tolerance` x part size (median
  inter-landmark distance) and the share inside the joint box, each with a patient-level
  bootstrap interval, plus the mean error per landmark;
- **grading**: the per-joint grader of `crops` (the same recipe as the hand rows), trained on the
  simulated readers' grades fused by the platform's consensus (ordinal Dawid-Skene), scored
  against the phantom truth with the bench's metric table (balanced accuracy, within-one, kappa,
  total MAE, patient-level intervals) and the test set's support per grade.

`--foot-erosion-heads range,sides` grades feet twice: with a plain 0-10 erosion head and with the
head that predicts two 0-5 sides and returns their sum (`GradingNetConfig.side_sum`), both trained on the same
0-10 labels, so the choice between them is a measurement.

Every printed line is one JSON object; `--table` adds plain text.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from scoring.bootstrap import Interval, patient_bootstrap
from scoring.image_readers import make_image_reader_panel

from . import bench
from . import crops as crop_recipe
from .body_parts import BODY_PARTS
from .data import build_dataset, hand_size, load_scheme, patient_split, prepare_image, scheme_dimensions
from .foot_phantoms import generate_whole_patient
from .inference import HandModel, build_model, locate
from .networks import GradingNet, GradingNetConfig
from .phantoms import PhantomConfig
from .train import DEFAULT_SCHEMES, TrainConfig, class_balance_weights, evaluate, to_tensors, train_one_epoch

FOOT_EROSION_HEADS = ("range", "sides")


def make_films(
    n_patients: int, seed: int, config: PhantomConfig, *, severities: Sequence[float] | None = None
) -> dict[str, tuple[list[dict], list[dict]]]:
    """{body part: (samples with truth in "targets", per-film visibility)} of n whole patients.

    Patient ids and seeds are `bench.make_hands`' so the hand films are the hand rows' own films.
    """
    from .body_parts import film_sample

    out: dict[str, tuple[list[dict], list[dict]]] = {part: ([], []) for part in BODY_PARTS}
    for p in range(n_patients):
        severity = None if severities is None else float(severities[p])
        pid = f"bench{seed:04d}p{p:04d}"
        for phantom in generate_whole_patient(seed * 100_003 + p, config, severity=severity):
            samples, visibility = out[getattr(phantom, "body_part", "hand")]
            samples.append(film_sample(phantom, pid))
            visibility.append(phantom.visibility)
    return out


# ---------------------------------------------------------------------------------------------
# Stage 1 alone
# ---------------------------------------------------------------------------------------------


def train_landmarks(
    samples: Sequence[dict], scheme: dict, *, epochs: int, patience: int = 6, time_budget_s: float | None = None,
    seed: int = 0, val_fraction: float = 0.2,
) -> tuple[HandModel, dict[str, Any]]:
    """The landmark network trained on `samples`' landmark positions; best held-out loss kept."""
    cfg = TrainConfig(seed=seed, scheme=scheme, epochs=epochs, patience=patience, time_budget_s=time_budget_s)
    grading = GradingNetConfig(crop_size=8, widths=(8,), hidden=8, embed_dim=2)  # built, never trained
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    data = build_dataset([bench._without_truth(s) for s in samples], scheme, cfg.landmark.input_size,
                         grading.crop_size, cfg.crop_scale, cfg.context_factor)
    split = np.array([patient_split(p, seed, val_fraction, 0.0) for p in data.patient_ids])
    train, val = data.subset(np.flatnonzero(split == "train")), data.subset(np.flatnonzero(split == "val"))
    if len(val) == 0:
        raise ValueError("no held-out training patients for early stopping; add patients")
    model = build_model(scheme, cfg.landmark, grading, cfg.crop_scale)
    opt = torch.optim.AdamW(model.landmark_net.parameters(), lr=cfg.landmark_lr, weight_decay=cfg.weight_decay)
    weights = class_balance_weights(train, cfg.class_balance)
    train_t, val_t = to_tensors(train, torch.device("cpu")), to_tensors(val, torch.device("cpu"))
    best, best_epoch, best_state, waited, curve = math.inf, 0, None, 0, []
    t0 = time.monotonic()
    for epoch in range(1, epochs + 1):

        def lr_factor(frac: float, epoch: int = epoch) -> float:
            progress = (epoch - 1 + frac) / epochs
            if time_budget_s:
                progress = max(progress, (time.monotonic() - t0) / time_budget_s)
            warm = min(1.0, (epoch - 1 + frac) / 2.0 + 0.05)
            return warm * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))

        log = train_one_epoch(model, train_t, {"landmark": opt}, cfg, g, lr_factor, weights,
                              {"landmark": True, "grading": False})
        ev = evaluate(model, val_t, cfg, weights)
        curve.append({"epoch": epoch, "train_loss": round(log["landmark_train_loss"], 4),
                      "held_out_loss": round(ev["landmark_val_loss"], 4),
                      "held_out_accuracy": round(ev["localisation_accuracy_net"], 3),
                      "seconds": round(time.monotonic() - t0, 1)})
        if ev["landmark_val_loss"] < best:
            best, best_epoch, waited = ev["landmark_val_loss"], epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.landmark_net.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
        if time_budget_s and time.monotonic() - t0 >= time_budget_s:
            break
    if best_state is not None:
        model.landmark_net.load_state_dict(best_state)
    model.eval()
    return model, {"epochs_run": len(curve), "best_epoch": best_epoch, "train_films": len(train),
                   "held_out_films": len(val), "seconds": round(time.monotonic() - t0, 1), "curve": curve}


@torch.inference_mode()
def predicted_points(model: HandModel, samples: Sequence[dict]) -> np.ndarray:
    """(films, landmarks, 2) stage-1 points in original pixels."""
    out = []
    for s in samples:
        prep = prepare_image(s["image"], s["laterality"], model.landmark_net.cfg.input_size)
        points, _ = locate(model, prep)
        out.append(points)
    return np.stack(out)


def localisation_table(
    pred: np.ndarray, samples: Sequence[dict], names: Sequence[str], *, tolerance: float, replicates: int, seed: int = 0,
) -> dict[str, Any]:
    """Point error (px), share within tolerance x part size and share inside the box, by patient."""
    true = np.array([[s["landmarks"][n] for n in names] for s in samples], dtype=np.float64)
    boxes = np.array([[s["boxes"][n] for n in names] for s in samples], dtype=np.float64)
    err = np.sqrt(((pred - true) ** 2).sum(-1))  # (films, L)
    sizes = np.array([hand_size(t) for t in true])
    within = err <= tolerance * sizes[:, None]
    inside = ((pred[..., 0] >= boxes[..., 0]) & (pred[..., 0] <= boxes[..., 2])
              & (pred[..., 1] >= boxes[..., 1]) & (pred[..., 1] <= boxes[..., 3]))
    groups = [s["patient_id"] for s in samples]

    def interval(values: np.ndarray) -> Interval:
        return patient_bootstrap(lambda idx: float(values[idx].mean()), groups, replicates=replicates, seed=seed)

    return {
        "films": len(samples), "patients": len(set(groups)), "landmarks": int(err.size), "tolerance": tolerance,
        "mean_part_size_px": round(float(sizes.mean()), 1),
        "point_error_px": interval(err), "within_tolerance": interval(within.astype(float)),
        "inside_box": interval(inside.astype(float)),
        "error_px_by_landmark": {n: round(float(err[:, i].mean()), 1) for i, n in enumerate(names)},
    }


def overlay_sheet(pred: np.ndarray, samples: Sequence[dict], names: Sequence[str], *, tiles: int = 8, width: int = 256, columns: int = 4):
    """A contact sheet of test films: true landmarks (green circles, joint box in grey) and the
    predicted ones (red crosses joined to their true point), to look at where stage 1 goes wrong."""
    from PIL import Image, ImageDraw, ImageFont

    from .contact_sheet import _to_8bit

    picked = list(range(min(tiles, len(samples))))
    images = []
    for i in picked:
        s = samples[i]
        scale = width / s["image"].shape[1]
        tile = Image.fromarray(_to_8bit(s["image"])).resize((width, int(round(s["image"].shape[0] * scale))), Image.LANCZOS).convert("RGB")
        draw = ImageDraw.Draw(tile)
        font = ImageFont.load_default(size=10)
        for j, n in enumerate(names):
            x0, y0, x1, y1 = (c * scale for c in s["boxes"][n])
            draw.rectangle((x0, y0, x1, y1), outline=(120, 120, 120))
            tx, ty = (c * scale for c in s["landmarks"][n])
            px, py = pred[i, j] * scale
            draw.ellipse((tx - 3, ty - 3, tx + 3, ty + 3), outline=(60, 220, 60))
            draw.line((tx, ty, px, py), fill=(255, 80, 80))
            draw.line((px - 3, py - 3, px + 3, py + 3), fill=(255, 60, 60), width=2)
            draw.line((px - 3, py + 3, px + 3, py - 3), fill=(255, 60, 60), width=2)
        draw.rectangle((0, 0, width, 13), fill=(0, 0, 0))
        draw.text((3, 1), f"{s['patient_id']} {s['laterality']}{s.get('body_part', 'hand')[0].upper()}", fill=(230, 230, 230), font=font)
        images.append(tile)
    rows = (len(images) + columns - 1) // columns
    h = max(t.height for t in images)
    sheet = Image.new("RGB", (columns * width, rows * h), (0, 0, 0))
    for k, t in enumerate(images):
        sheet.paste(t, ((k % columns) * width, (k // columns) * h))
    return sheet


# ---------------------------------------------------------------------------------------------
# Stage 2 on cached crops
# ---------------------------------------------------------------------------------------------


def side_sum_builder(scheme: dict, recipe: crop_recipe.CropRecipe) -> GradingNet:
    """The recipe's grader with foot erosion as the sum of two 0-5 sides (`networks.log_sum_distribution`)."""
    return GradingNet(replace(crop_recipe.build_grader(scheme, recipe).cfg, side_sum=("erosion",)))


def range_builder(scheme: dict, recipe: crop_recipe.CropRecipe) -> GradingNet:
    """The recipe's grader with a plain head over every grade (0-10 for foot erosion)."""
    return GradingNet(replace(crop_recipe.build_grader(scheme, recipe).cfg, side_sum=()))


def grading_rows(
    part: str, scheme: dict, train: list[dict], test: list[dict], train_reads: dict, recipe: crop_recipe.CropRecipe,
    rows: Sequence[str], heads: Sequence[str], replicates: int,
) -> dict[str, dict[str, dict[str, Interval]]]:
    """{row name: {dimension: metric table}} of the crop-trained grader against the truth."""
    dims = scheme_dimensions(scheme)
    lms = bench.dimension_landmarks(scheme)
    train_crops = crop_recipe.crop_dataset([bench._without_truth(s) for s in train], scheme, recipe)
    test_crops = crop_recipe.crop_dataset([bench._without_truth(s) for s in test], scheme, recipe)
    patients = [s["patient_id"] for s in test]
    truth = {d: bench.truth_array(test, lms[d], d) for d, _ in dims}
    out = {}
    for row in rows:
        row_samples = bench.training_samples(train, train_reads, scheme, row)
        data = crop_recipe.with_targets(train_crops, [s["targets"] for s in row_samples], scheme, recipe.label_smoothing)
        for head in heads if part == "foot" else ("range",):
            name = f"{part} {row}" + (f" (erosion head: {head})" if part == "foot" else "")
            t1 = time.monotonic()
            net, report = crop_recipe.train_grader(
                data, scheme, recipe, build=side_sum_builder if head == "sides" else range_builder,
                log=lambda point, name=name: bench._print("epoch", {"row": name, **point}),
            )
            pred = crop_recipe.grades_by_dimension(crop_recipe.predict_crops(net, test_crops, recipe), scheme)
            out[name] = {d: bench.metric_table(truth[d], pred[d], patients, k, replicates=replicates) for d, k in dims}
            bench._print("model_vs_truth", {
                "row": name, "body_part": part, "labels": row, "erosion_head": head if part == "foot" else "range",
                "epochs_run": report["epochs_run"], "best_epoch": report["best_epoch"],
                "train_films": report["train_hands"], "held_out_films": report["held_out_hands"],
                "test_films": len(test), "test_patients": len(set(patients)),
                "train_seconds": round(time.monotonic() - t1, 1), **{d: bench._fmt(v) for d, v in out[name].items()},
            })
    return out


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _localisation_text(by_part: dict[str, dict[str, Any]]) -> str:
    lines = ["localisation (stage 1, test films): point error px | within tolerance | inside box"]
    for part, t in by_part.items():
        lines.append(f"    {part:<8}{t['point_error_px']} | {t['within_tolerance']} | {t['inside_box']}"
                     f"  ({t['films']} films, {t['patients']} patients, {t['landmarks']} landmarks, tolerance {t['tolerance']} x {t['mean_part_size_px']} px)")
    return "\n".join(lines)


def run_parts(a: Any) -> dict[str, Any]:
    """The benchmark per body part; `a` holds bench's parsed arguments."""
    parts = [p.strip() for p in a.body_parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(BODY_PARTS))
    if unknown:
        raise SystemExit(f"--body-parts: unknown {unknown}; choose from {', '.join(BODY_PARTS)}")
    rows = [r.strip() for r in a.rows.split(",") if r.strip()]
    heads = [h.strip() for h in a.foot_erosion_heads.split(",") if h.strip()]
    if sorted(set(heads) - set(FOOT_EROSION_HEADS)):
        raise SystemExit(f"--foot-erosion-heads: choose from {', '.join(FOOT_EROSION_HEADS)}")
    phantom = PhantomConfig(width=a.width, height=a.height, mode=a.mode)
    panel = make_image_reader_panel(a.seed, a.readers)
    recipe = crop_recipe.CropRecipe(max_epochs=a.max_epochs, patience=a.patience, crop_size=a.crop_size, seed=a.seed)
    # Feet get as many batches per epoch as hands of as many patients (about 12 at 20 patients).
    foot_recipe = replace(recipe, min_steps=a.foot_min_steps)
    t0 = time.monotonic()
    train_films = make_films(a.patients, a.phantom_seed, phantom)
    sev = np.random.default_rng([a.phantom_seed, 3]).permutation(np.linspace(0.2, 3.6, a.test_patients))
    test_films = make_films(a.test_patients, a.phantom_seed + 50_000, phantom, severities=sev)
    bench._print("data", {"mode": a.mode, "patients": a.patients, "test_patients": a.test_patients,
                          "readers": [r.name for r in panel], "seconds": round(time.monotonic() - t0, 1)})
    localisation: dict[str, dict[str, Any]] = {}
    grading: dict[str, dict[str, dict[str, Interval]]] = {}
    for part in parts:
        scheme = load_scheme(DEFAULT_SCHEMES, a.scheme, part)
        train, train_vis = train_films[part]
        test, test_vis = test_films[part]
        dims = scheme_dimensions(scheme)
        lms = bench.dimension_landmarks(scheme)
        truth = {d: bench.truth_array(test, lms[d], d) for d, _ in dims}
        patients = [s["patient_id"] for s in test]
        bench._print("data", {"body_part": part, "train_films": len(train), "test_films": len(test),
                              "test_support": {d: bench.grade_support(truth[d], patients, k) for d, k in dims}})
        if a.landmark_epochs > 0:
            model, report = train_landmarks(train, scheme, epochs=a.landmark_epochs, seed=a.seed,
                                            time_budget_s=a.landmark_time_budget)
            points = predicted_points(model, test)
            table = localisation_table(points, test, scheme["landmarks"], tolerance=a.tolerance, replicates=a.replicates)
            if getattr(a, "overlay", None):
                path = f"{a.overlay}-{part}.png"
                overlay_sheet(points, test, scheme["landmarks"]).save(path)
                bench._print("overlay", {"body_part": part, "path": path})
            localisation[part] = table
            bench._print("localisation", {"body_part": part, **{k: v for k, v in report.items() if k != "curve"},
                                          "curve_tail": report["curve"][-3:],
                                          **{k: (v.as_dict() if isinstance(v, Interval) else v) for k, v in table.items()}})
        train_reads = bench.read_hands(train, train_vis, panel, scheme, a.seed)
        part_recipe = foot_recipe if part == "foot" else recipe
        grading.update(grading_rows(part, scheme, train, test, train_reads, part_recipe, rows, heads, a.replicates))
    if a.table:
        if localisation:
            print(_localisation_text(localisation))
        print(bench._text_table("grading against truth, by body part and training labels", grading))
    return {"localisation": localisation, "grading": grading}
