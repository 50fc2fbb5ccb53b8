"""One checkpoint per model version, holding one two-stage model per body part (hands, feet).

A hand and a foot share nothing a network could use: other landmarks, other crops, erosion 0-5
against 0-10. So each body part gets its own pair of networks, trained by `train.main` on that
part's samples with that part's scheme, and the version's checkpoint carries them together:

    {...the first part's checkpoint (hands when there are any)..., "parts": {"foot": {...}}}

The first part sits at the top level so every reader of the single-part format (promotion,
explanations, the model pages) keeps working unchanged; `part_checkpoint(ckpt, "foot")` and
`load_part_models(ckpt)` pick a part by the radiograph's body part. Left feet are mirrored to
right-foot orientation exactly as left hands are (`data.prepare_image`): a right foot's hallux,
like a right hand's thumb, lies on the image's left.

numpy and torch only, like the rest of `modeling.ml`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from .data import Scheme, load_scheme, phantom_sample
from .inference import HandModel, load_model

BODY_PARTS = ("hand", "foot")


def body_part_of_scheme(scheme: Scheme) -> str:
    return str(scheme.get("body_part", "hand"))


def part_checkpoint(ckpt: dict, body_part: str) -> dict | None:
    """The checkpoint of one body part inside a version's checkpoint, or None if it has none."""
    if body_part_of_scheme(ckpt.get("scheme") or {}) == body_part:
        return ckpt
    return (ckpt.get("parts") or {}).get(body_part)


def checkpoint_body_parts(ckpt: dict) -> list[str]:
    return [part for part in BODY_PARTS if part_checkpoint(ckpt, part) is not None]


def combine_checkpoints(by_part: dict[str, dict]) -> dict:
    """One checkpoint from per-part ones: hands (else the first part) on top, the rest in "parts".

    The top-level metrics stay the top part's (what promotion compares); every part's metrics
    are also listed under metrics["body_parts"], so a page can show feet beside hands.
    """
    if not by_part:
        raise ValueError("no body part was trained")
    order = sorted(by_part, key=lambda p: BODY_PARTS.index(p) if p in BODY_PARTS else len(BODY_PARTS))
    top = dict(by_part[order[0]])
    top["metrics"] = {**top.get("metrics", {}), "body_parts": {p: by_part[p].get("metrics", {}) for p in order}}
    top["parts"] = {p: by_part[p] for p in order[1:]}
    return top


def load_part_models(source: dict, device: str = "cpu") -> dict[str, HandModel]:
    """{body part: ready model} for every part the checkpoint holds."""
    return {part: load_model(part_checkpoint(source, part), device) for part in checkpoint_body_parts(source)}


def load_part_model(source: dict, body_part: str, device: str = "cpu") -> HandModel | None:
    ckpt = part_checkpoint(source, body_part)
    return None if ckpt is None else load_model(ckpt, device)


def split_by_part(samples: Iterable[dict]) -> dict[str, list[dict]]:
    """Samples grouped by their "body_part" key (absent means a hand, as before feet existed)."""
    out: dict[str, list[dict]] = {}
    for s in samples:
        out.setdefault(str(s.get("body_part", "hand")), []).append(s)
    return out


def train_parts(
    cfg: Any,
    samples: Iterable[dict],
    schemes: dict[str, Scheme],
    on_epoch: Callable[[int, dict], None] | None = None,
    time_budgets: dict[str, float] | None = None,
) -> dict:
    """Train one model per body part that has samples and a scheme; one combined checkpoint.

    `cfg` is a `train.TrainConfig`; each part trains with it, its own scheme and no output path.
    Each part has the whole `cfg.time_budget_s` unless `time_budgets` gives it its own (seconds
    by body part), so that a build on a slow machine can give the feet less than the hands.
    `on_epoch(epoch, log)` sees every part's epochs, each log marked with its "body_part"; its
    `epoch` runs on across the parts, scaled so that the last part's last epoch is `cfg.epochs`
    (a progress bar fills once, not once per part), while the log keeps the part's own epoch.
    """
    from .train import main, save_checkpoint  # here: train imports this package's data helpers

    by_part = split_by_part(samples)
    unknown = sorted(set(by_part) - set(schemes))
    if unknown:
        raise ValueError(f"samples of body part(s) {unknown} but no scheme for them")
    todo = [p for p in BODY_PARTS if by_part.get(p) and schemes.get(p) and schemes[p]["landmarks"]]
    out: dict[str, dict] = {}
    for i, part in enumerate(todo):

        def log(epoch: int, metrics: dict, part: str = part, i: int = i) -> None:
            if on_epoch is not None:
                at = (i * cfg.epochs + epoch) / len(todo)
                on_epoch(int(at) if at.is_integer() else at, {**metrics, "body_part": part})

        budget = (time_budgets or {}).get(part, cfg.time_budget_s)
        out[part] = main(replace(cfg, scheme=schemes[part], out=None, time_budget_s=budget), by_part[part], on_epoch=log)
    ckpt = combine_checkpoints(out)
    if getattr(cfg, "out", None):
        save_checkpoint(ckpt, cfg.out)
    return ckpt


# ---------------------------------------------------------------------------------------------
# Phantom samples of whole patients
# ---------------------------------------------------------------------------------------------


def film_sample(phantom: Any, patient_id: str) -> dict:
    """A hand or foot phantom as a training sample that says which body part it is."""
    return phantom_sample(phantom, patient_id) | {"body_part": getattr(phantom, "body_part", "hand")}


def samples_from_whole_patients(n_patients: int, seed: int = 0, config: Any = None) -> Iterator[dict]:
    """Both hands and both feet of `n_patients` phantom patients, generated lazily."""
    from . import foot_phantoms

    for pid, phantom in foot_phantoms.generate_patient_films(4 * n_patients, seed, config):
        yield film_sample(phantom, pid)


def phantom_schemes(schemes_path: str, key: str = "svdh") -> dict[str, Scheme]:
    """The scheme of every body part the schemes file defines for `key` (parts without landmarks left out)."""
    out = {}
    for part in BODY_PARTS:
        scheme = load_scheme(schemes_path, key, part)
        if scheme["landmarks"]:
            out[part] = scheme
    return out
