"""Which explanation map points at the lesion? Measured on realistic phantoms, whose lesions are known.

    python -m modeling.ml.explain_bench                      # trains a small CPU model first
    python -m modeling.ml.explain_bench --checkpoint m.pt    # an existing hand-scorer checkpoint

For every area of held-out phantom hands with erosion >= 1 or JSN >= 1 and every method of
`modeling.ml.explain`, the map of the area's true grade is computed on the crop cut at the true
landmarks and mapped back onto the film. Scores, each with a patient-level bootstrap interval:

- pointing game: the hottest pixel lies inside the lesion mask dilated by 1/16 of the crop side;
- inside share: the share of the map's (positive) mass inside that mask;
- chance: the mask's share of the crop, what a map spread evenly over the crop would get.

Then a cascading weight-randomisation check per method (`explain.sanity_check`): the rank
correlation of each map with the original after randomising the heads, the MLP, then the trunk
block by block; a method still correlated above 0.5 with nothing left of the model fails.
The model is trained on the phantoms' true grades (a ceiling model: the question is where the
maps point, not how well the model grades). Writes the table as JSON and an overlay sheet.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from scoring.bootstrap import patient_bootstrap

from . import explain
from .heatmaps import overlay
from .inference import model_from_checkpoint
from .lesion_truth import dilate, lesion_masks
from .phantoms import PhantomConfig, generate_phantoms


def train_small_model(patients: int, seconds: float, seed: int, width: int, height: int) -> dict:
    from .networks import GradingNetConfig, LandmarkNetConfig
    from .train import TrainConfig, main

    cfg = TrainConfig(
        seed=seed, n_patients=patients, phantom_seed=seed, epochs=40, time_budget_s=seconds, num_threads=2,
        landmark=LandmarkNetConfig(), grading=GradingNetConfig(),
    )
    from .data import samples_from_phantoms

    return main(cfg, samples=samples_from_phantoms(patients, seed, PhantomConfig(width=width, height=height)))


def crop_side_px(ctx: explain.CropContext) -> float:
    """Side of the crop in image pixels: the crop->image matrix's scale times the crop's pixels."""
    m = ctx.to_image[0].double()
    return float(torch.sqrt(torch.abs(torch.det(m[:2, :2])))) * ctx.crop.shape[-1]


def measure(
    model, hands: list[tuple[str, object]], methods: list[str], max_areas: int | None = None
) -> tuple[dict, list]:
    """Rows (patient, method, hit, share, chance) for every lesion area (the first `max_areas`) and method."""
    scheme_areas = {(a["landmark"], a["dimension"]) for a in model.scheme["areas"]}
    rows: list[dict] = []
    contexts: list[tuple[explain.CropContext, str]] = []
    examples: list[dict] = []
    for patient, phantom in hands:
        truth_points = {name: (float(x), float(y)) for name, (x, y) in phantom.landmarks.items()}
        for (landmark, dimension), mask in sorted(lesion_masks(phantom).items()):
            if (landmark, dimension) not in scheme_areas:
                continue
            if max_areas is not None and len(contexts) >= max_areas:
                break
            ctx = explain.crop_for(model, phantom.image, phantom.laterality, landmark, truth_points)
            side = crop_side_px(ctx)
            tolerance = max(1, int(round(side / 16)))
            target = dilate(mask, tolerance)
            grade = int(phantom.grades[dimension][landmark])
            crop_area = explain.to_full_image(torch.ones(ctx.crop.shape[-2:]), ctx) > 0.5
            chance = float((target & crop_area).sum() / max(crop_area.sum(), 1))
            contexts.append((ctx, dimension))
            maps = {}
            for method in methods:
                cam = explain.to_full_image(explain.crop_map(model.grading_net, ctx, dimension, method, grade), ctx)
                total = float(cam.sum())
                hot = np.unravel_index(int(np.argmax(cam)), cam.shape)
                rows.append({
                    "patient": patient, "method": method, "area": f"{landmark}:{dimension}", "grade": grade,
                    "hit": float(target[hot]) if total > 0 else 0.0,
                    "share": float(cam[target].sum() / total) if total > 0 else 0.0,
                    "chance": chance,
                })
                maps[method] = cam
            if len(examples) < 4 and (dimension == "erosion" or len(examples) >= 2) and grade >= 2:
                examples.append({"phantom": phantom, "landmark": landmark, "dimension": dimension, "grade": grade,
                                 "mask": mask, "maps": maps, "point": truth_points[landmark], "side": side})
    return {"rows": rows, "contexts": contexts}, examples


def summarise(rows: list[dict], methods: list[str], replicates: int) -> list[dict]:
    table = []
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        groups = np.array([r["patient"] for r in mine])
        hit = np.array([r["hit"] for r in mine])
        share = np.array([r["share"] for r in mine])
        chance = np.array([r["chance"] for r in mine])
        table.append({
            "method": method, "label": explain.METHOD_LABELS.get(method, method), "areas": len(mine),
            "patients": len(set(groups.tolist())),
            "pointing": patient_bootstrap(lambda i: hit[i].mean(), groups, replicates=replicates).as_dict(),
            "inside_share": patient_bootstrap(lambda i: share[i].mean(), groups, replicates=replicates).as_dict(),
            "chance_share": round(float(chance.mean()), 3),
        })
    return table


def overlay_sheet(examples: list[dict], methods: list[str], tile: int = 180) -> Image.Image:
    """One row per method, one column per example area: the crop of the film with the map over it
    and the lesion mask's outline in white."""
    sheet = Image.new("RGB", (160 + tile * len(examples), 24 + tile * len(methods)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, ex in enumerate(examples):
        draw.text((160 + c * tile + 4, 6), f"{ex['landmark']} {ex['dimension']} {ex['grade']}", fill="black")
    for r, method in enumerate(methods):
        draw.text((4, 24 + r * tile + tile // 2), explain.METHOD_LABELS.get(method, method)[:26], fill="black")
        for c, ex in enumerate(examples):
            x, y = ex["point"]
            half = int(ex["side"] / 2)
            ph = ex["phantom"]
            y0, y1 = max(0, int(y) - half), min(ph.height, int(y) + half)
            x0, x1 = max(0, int(x) - half), min(ph.width, int(x) + half)
            rgb = overlay(ph.image[y0:y1, x0:x1], ex["maps"][method][y0:y1, x0:x1])
            edge = ex["mask"][y0:y1, x0:x1]
            outline = edge & ~_erode(edge)
            rgb[outline] = (255, 255, 255)
            sheet.paste(Image.fromarray(rgb).resize((tile - 4, tile - 4), Image.NEAREST), (160 + c * tile, 24 + r * tile))
    return sheet


def _erode(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:, :] &= mask[:-1, :]
    out[:-1, :] &= mask[1:, :]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


def print_table(table: list[dict], sanity: list[explain.SanityResult], default: str) -> None:
    print(f"{'method':<30} {'areas':>5} {'pointing game [95% CI]':>26} {'inside share [95% CI]':>26} {'chance':>7}")
    for row in table:
        p, s = row["pointing"], row["inside_share"]
        mark = " *" if row["method"] == default else ""
        print(f"{row['label'] + mark:<30} {row['areas']:>5} {p['value']:>8.3f} [{p['low']:.3f}, {p['high']:.3f}] "
              f"{s['value']:>8.3f} [{s['low']:.3f}, {s['high']:.3f}] {row['chance_share']:>7.3f}")
    print("\nweight randomisation: mean rank correlation with the original map after randomising up to ...")
    steps = sanity[0].steps if sanity else []
    print(f"{'method':<22}" + "".join(f"{s:>11}" for s in steps) + "   verdict")
    for result in sanity:
        print(f"{result.method:<22}" + "".join(f"{c:>11.2f}" for c in result.correlations)
              + ("   changes (passes)" if result.passes else "   DOES NOT CHANGE (fails)"))


def best_method(table: list[dict], sanity: list[explain.SanityResult]) -> str:
    """Highest pointing-game accuracy among methods that pass the randomisation check; ties by share."""
    passing = {r.method for r in sanity if r.passes}
    candidates = [row for row in table if row["method"] in passing] or table
    return max(candidates, key=lambda row: (row["pointing"]["value"], row["inside_share"]["value"]))["method"]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="hand-scorer checkpoint; trained and written here when missing")
    p.add_argument("--train-patients", type=int, default=60)
    p.add_argument("--train-seconds", type=float, default=600)
    p.add_argument("--patients", type=int, default=12, help="held-out phantom patients (two hands each)")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=640)
    p.add_argument("--sanity-crops", type=int, default=12)
    p.add_argument("--replicates", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="test-artifacts/explain-bench")
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    ckpt_path = Path(a.checkpoint) if a.checkpoint else out / "model.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    else:
        print(f"training a small model on {a.train_patients} realistic phantom patients ({a.train_seconds:.0f} s budget) ...")
        ckpt = train_small_model(a.train_patients, a.train_seconds, a.seed, a.width, a.height)
        torch.save(ckpt, ckpt_path)
    model = model_from_checkpoint(ckpt)
    methods = list(explain.METHODS)
    # Held-out patients: another phantom seed than training.
    hands = list(generate_phantoms(2 * a.patients, a.seed + 1_000, PhantomConfig(width=a.width, height=a.height)))
    measured, examples = measure(model, hands, methods)
    table = summarise(measured["rows"], methods, a.replicates)
    rng = np.random.default_rng(a.seed)
    contexts = measured["contexts"]
    chosen = [contexts[i] for i in sorted(rng.choice(len(contexts), size=min(a.sanity_crops, len(contexts)), replace=False))]
    sanity = [explain.sanity_check(model.grading_net, chosen, method, name=method, seed=a.seed) for method in methods]
    default = best_method(table, sanity)
    print_table(table, sanity, default)
    print(f"\nbest measured (default): {default}   [{time.monotonic() - started:.0f} s]")
    result = {
        "table": table, "default": default,
        "sanity": [{"method": r.method, "steps": r.steps, "correlations": [round(c, 3) for c in r.correlations],
                    "passes": r.passes} for r in sanity],
        "hands": len(hands), "width": a.width, "height": a.height, "checkpoint": str(ckpt_path),
        "model_metrics": {k: ckpt.get("metrics", {}).get(k) for k in ("epochs_run", "train_seconds", "hands")},
    }
    (out / "explain-bench.json").write_text(json.dumps(result, indent=1))
    if examples:
        overlay_sheet(examples, methods).save(out / "explain-overlays.png")
    return result


if __name__ == "__main__":
    main()
