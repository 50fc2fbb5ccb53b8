"""Degeneracy guard: tell a consensus that no longer resembles what the readers said.

EM for Dawid-Skene-type models can converge to a fixed point that fits the likelihood and means
nothing: every area put in one or two grades (collapse), grades swapped (label switching), reader
matrices whose largest entry sits far from the diagonal. The agreement page then shows every
reader with kappa near 0 against the consensus and a lead concludes the readers are useless. The
checks below need only the labels, the consensus and the estimated matrices, so they run after
every fit, whichever aggregator made it. Arrays only, no ORM.

Each check compares the consensus with something the readers establish on their own:

1. **Far from the readers' own agreement.** The consensus agrees with the majority vote on a
   share of areas far below how often two readers agree with each other (by more than
   ``MARGIN_MV``). A sound consensus sits among the readers, nearer the majority than any pair.
2. **Non-dominant diagonals.** Consensus grades on which *every* reader's estimated row (with at
   least ``MIN_ROW_SUPPORT`` expected areas) peaks off the diagonal hold more than ``MAX_MOVED``
   of the areas. One reader may be biased; when the whole panel "gives 0 to a true 1", the
   consensus has moved grade 1 to where nobody puts it: label switching, often by one grade.
3. **Every reader near chance.** Every reader with at least ``MIN_READER_AREAS`` graded areas
   has quadratic weighted kappa against the consensus below ``KAPPA_FLOOR``, while the readers'
   mean pairwise kappa is at least twice that: the readers agree with each other, not with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scoring.dawid_skene import pick_labels
from scoring.agreement import quadratic_weighted_kappa

MARGIN_MV = 0.25
MIN_ROW_SUPPORT = 5.0
MAX_MOVED = 0.1
MIN_READER_AREAS = 10
KAPPA_FLOOR = 0.2
# Checks 1 and 3 read shares and kappas; on a sample of this many areas their error is about
# 0.005, far inside the margins above, and the guard stays a small part of a large recompute.
SAMPLE_AREAS = 50_000


@dataclass(frozen=True)
class GuardVerdict:
    """Whether a consensus run looks degenerate, with the reasons in words a lead can act on."""

    tripped: bool
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return " ".join(self.reasons)


def majority_vote_labels(task: NDArray[np.int64], label: NDArray[np.int64], n_tasks: int, n_classes: int) -> NDArray[np.int64]:
    """Plain majority vote per task, ties to the grade nearest the median, then the lower grade."""
    counts = np.bincount(task * n_classes + label, minlength=n_tasks * n_classes).reshape(n_tasks, n_classes)
    counts = counts.astype(float)
    return pick_labels(counts, counts)


def degeneracy_check(
    task: ArrayLike,
    worker: ArrayLike,
    label: ArrayLike,
    consensus: ArrayLike,
    *,
    n_classes: int,
    confusion: ArrayLike | None = None,
    support: ArrayLike | None = None,
    reader_names: list[str] | None = None,
) -> GuardVerdict:
    """Run the three checks of the module docstring on one scale's labels and consensus.

    ``task``/``worker``/``label`` are the flat labels (indices from 0), ``consensus`` one grade
    per task index. ``confusion`` (readers x true x given) and ``support`` (readers x true, the
    expected areas behind each row) are the aggregator's estimates, when it has them. Above
    ``SAMPLE_AREAS`` areas, checks 1 and 3 run on a fixed random sample of that many areas.
    """
    t = np.asarray(task, dtype=np.int64)
    w = np.asarray(worker, dtype=np.int64)
    g = np.asarray(label, dtype=np.int64)
    c = np.asarray(consensus, dtype=np.int64)
    K = int(n_classes)
    if not t.size:
        return GuardVerdict(tripped=False)
    W = int(w.max()) + 1
    if c.size > SAMPLE_AREAS:
        chosen = np.zeros(c.size, dtype=bool)
        chosen[np.random.default_rng(0).choice(c.size, SAMPLE_AREAS, replace=False)] = True
        keep = chosen[t]
        renumber = np.cumsum(chosen) - 1
        t, w, g, c = renumber[t[keep]], w[keep], g[keep], c[chosen]
    names = reader_names or [f"reader {i + 1}" for i in range(W)]
    reasons: list[str] = []
    figures: dict[str, float] = {}

    # 1. the consensus against the majority vote, beside the readers' own pairwise agreement
    mv = majority_vote_labels(t, g, c.size, K)
    graded = np.bincount(t, minlength=c.size) > 0
    vs_mv = float(np.mean(c[graded] == mv[graded]))
    pair_agree, pair_kappa = _pairwise(t, w, g, c.size, W, K)
    figures.update(agreement_with_majority=vs_mv, reader_pair_agreement=pair_agree, reader_pair_kappa=pair_kappa)
    if np.isfinite(pair_agree) and vs_mv < pair_agree - MARGIN_MV:
        reasons.append(
            f"The consensus agrees with the readers' majority on only {vs_mv:.0%} of areas, "
            f"while two readers agree with each other on {pair_agree:.0%}."
        )

    # 2. grades on which no reader's estimated row has its peak on the diagonal
    if confusion is not None and support is not None:
        m = np.asarray(confusion, dtype=float)
        s = np.asarray(support, dtype=float)
        thick = s >= MIN_ROW_SUPPORT
        diagonal = m[:, np.arange(K), np.arange(K)]
        off = diagonal < m.max(axis=2) - 1e-12
        # A grade the whole panel reads as another one: the consensus grade has been moved.
        moved = thick.any(axis=0) & np.all(off | ~thick, axis=0)
        weight = float(s.sum())
        share = float(s[:, moved].sum() / weight) if weight > 0 else 0.0
        figures["moved_grade_share"] = share
        if share > MAX_MOVED:
            grades = ", ".join(str(k) for k in np.flatnonzero(moved))
            reasons.append(
                f"On {share:.0%} of areas the consensus grade is one that no reader most often gives to it "
                f"(grades {grades}): the estimated reader profiles have their peak off the diagonal, so the "
                f"grades look shifted or swapped."
            )

    # 3. every reader near chance against the consensus
    kappas = []
    for r in range(W):
        mine = w == r
        if mine.sum() >= MIN_READER_AREAS:
            kappas.append(_kappa(c[t[mine]], g[mine], K))
    if kappas:
        figures["best_reader_kappa"] = float(np.nanmax(kappas)) if np.isfinite(kappas).any() else float("nan")
        if all((not np.isfinite(k)) or k < KAPPA_FLOOR for k in kappas) and np.isfinite(pair_kappa) and pair_kappa >= 2 * KAPPA_FLOOR:
            reasons.append(
                f"Every reader's kappa against the consensus is below {KAPPA_FLOOR} (best "
                f"{np.nanmax(kappas):.2f}) although readers agree with each other (kappa {pair_kappa:.2f})."
            )
    return GuardVerdict(tripped=bool(reasons), reasons=reasons, figures=figures)


def _kappa(a: NDArray[np.int64], b: NDArray[np.int64], K: int) -> float:
    """``scoring.agreement.quadratic_weighted_kappa`` of two grade arrays, through ``bincount``.

    The same formula on the same counts; that function's ``np.add.at`` takes a second on the
    million grades of a large study, which would double the guard's share of a recompute.
    """
    if a.size < 2:
        return float("nan")
    if a.size < 10_000:
        return float(quadratic_weighted_kappa(a, b, K))
    observed = np.bincount(a * K + b, minlength=K * K).reshape(K, K).astype(float)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / a.size
    idx = np.arange(K)
    weights = (idx[:, None] - idx[None, :]) ** 2 / max(K - 1, 1) ** 2
    obs_d, exp_d = float((weights * observed).sum()), float((weights * expected).sum())
    if obs_d == 0.0:
        return 1.0
    return 1.0 - obs_d / exp_d if exp_d else float("nan")


def _pairwise(t, w, g, T: int, W: int, K: int) -> tuple[float, float]:
    """Exact agreement and quadratic kappa of reader pairs, pooled over every pair of shared areas."""
    grid = np.full((T, W), -1, dtype=np.int64)
    grid[t, w] = g
    firsts, seconds = [], []
    for i in range(W):
        for j in range(i + 1, W):
            both = (grid[:, i] >= 0) & (grid[:, j] >= 0)
            firsts.append(grid[both, i])
            seconds.append(grid[both, j])
    if not firsts:
        return float("nan"), float("nan")
    a, b = np.concatenate(firsts), np.concatenate(seconds)
    if a.size < 2:
        return float("nan"), float("nan")
    return float(np.mean(a == b)), _kappa(a, b, K)
