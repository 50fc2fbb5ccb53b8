"""Radiographic progression: change scores, their reliability and smallest detectable change, and a
consensus that knows erosion and narrowing do not heal.

Pure numpy/scipy. A reader's (or the consensus's) grades of one patient's films form a
``timepoints x areas`` array in chronological order; everything here works on such arrays.

- Change scores: per interval (consecutive timepoints, and first to last when there are more
  than two), the change in total, erosion and JSN score and per area.
- Reliability of change: ICC(2,1) of change scores between readers (`scoring.reliability`), and
  the smallest detectable change (SDC) by the Bruynesteyn method.
- Progressors: shares above the SDC, above 0.5 and at least 5 units; the cumulative probability
  plot; readers who score regression (negative change).
- Monotone longitudinal Dawid-Skene: per joint, the latent grade sequence over a patient's
  timepoints is non-decreasing. Fitted by EM with forward-backward over non-decreasing paths and
  decoded exactly by Viterbi (dynamic programming) over those paths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .ordinal_ds import DEFAULT_CLASS_STRENGTH, DEFAULT_DECAY, default_strength, map_class_priors, map_confusion_rows, ordinal_kernel
from .reliability import ICCResult, icc_2_1

Z95 = 1.959963984540054
# The thresholds trials report beside the SDC: any progression (> 0.5 units) and clinically
# relevant progression (>= 5 units, van der Heijde's minimal clinically important difference).
ANY_PROGRESSION = 0.5
RELEVANT_PROGRESSION = 5.0
# A reader is flagged for regression when more than this share of their intervals show a total
# score that fell by more than half a unit: damage does not heal, so that share is reading error.
REGRESSION_FLAG_SHARE = 0.10


# --------------------------------------------------------------------------- change scores


def intervals(n_timepoints: int) -> list[tuple[int, int]]:
    """The intervals reported for a series: consecutive pairs, then first to last when T > 2."""
    pairs = [(i, i + 1) for i in range(n_timepoints - 1)]
    if n_timepoints > 2:
        pairs.append((0, n_timepoints - 1))
    return pairs


@dataclass(frozen=True)
class IntervalChange:
    """One interval of one series: change in total, erosion and JSN score and per area."""

    start: int  # timepoint index (chronological)
    end: int
    total: float
    erosion: float
    jsn: float
    per_area: NDArray[np.float64]  # areas; end - start


def change_scores(grades: ArrayLike, is_erosion: ArrayLike) -> list[IntervalChange]:
    """Change scores of one series, ``grades`` a ``timepoints x areas`` array in chronological order.

    ``is_erosion`` marks the erosion areas (the rest are JSN). NaN grades (an area not read) count
    as missing in both its timepoints: the area is left out of that interval's sums, as a total
    over different joint sets would mix change with coverage.
    """
    g = np.asarray(grades, dtype=float)
    erosion = np.asarray(is_erosion, dtype=bool)
    if g.ndim != 2 or g.shape[1] != erosion.size:
        raise ValueError("grades must be timepoints x areas with one is_erosion flag per area")
    out = []
    for start, end in intervals(g.shape[0]):
        delta = g[end] - g[start]
        seen = ~np.isnan(delta)
        if not seen.any():
            # Nothing read at both visits: the change is unknown, not zero.
            out.append(IntervalChange(start, end, math.nan, math.nan, math.nan, delta))
            continue
        out.append(
            IntervalChange(
                start=start,
                end=end,
                total=float(delta[seen].sum()),
                erosion=float(delta[seen & erosion].sum()),
                jsn=float(delta[seen & ~erosion].sum()),
                per_area=delta,
            )
        )
    return out


# --------------------------------------------------------------------------- reliability of change


@dataclass(frozen=True)
class ChangeReliability:
    """ICC(2,1) of change scores between readers and the Bruynesteyn SDC, with their counts."""

    icc: ICCResult
    sd_difference: float  # SD of the between-reader differences of change (pooled over reader pairs)
    sdc: float  # smallest detectable change of the mean of `k_averaged` readers' change scores
    k_averaged: int
    n_subjects: int
    n_readers: int


def sdc_from_sd_difference(sd_difference: float, k: int = 1) -> float:
    """Bruynesteyn's SDC = 1.96 * SD_diff / (sqrt(2) * sqrt(k)) (see `sdc_bruynesteyn`)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    return Z95 * sd_difference / (math.sqrt(2.0) * math.sqrt(k))


def sdc_bruynesteyn(changes: ArrayLike, k_averaged: int | None = None) -> tuple[float, float]:
    """Smallest detectable change of change scores, from ``subjects x readers`` change scores.

    Bruynesteyn K, Boers M, Kostense P, van der Linden S, van der Heijde D. "Deciding on
    progression of joint damage in paired films of individual patients: smallest detectable
    difference or change." Ann Rheum Dis 2005;64:179-182:

        SDC = 1.96 * SD_diff / (sqrt(2) * sqrt(k))

    with SD_diff the standard deviation of the differences between two readers' change scores of
    the same patients and k the number of readers whose change scores are averaged (k = 1: the
    SDC of one reader's change score; k = 2: of the mean of both). The sqrt(2) turns the SD of a
    difference of two readings into the error SD of one reading.

    With more than two readers SD_diff is pooled over reader pairs through the two-way ANOVA:
    SD_diff^2 = 2 * MS_error (for two readers this equals the variance of their differences
    exactly, so the formula above is reproduced). ``k_averaged`` defaults to the number of readers.
    Returns ``(sdc, sd_diff)``.
    """
    x = np.asarray(changes, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError("changes must be subjects x readers with at least 2 of each")
    if np.isnan(x).any():
        raise ValueError("changes must be complete (no NaN)")
    n, r = x.shape
    k = r if k_averaged is None else int(k_averaged)
    if k < 1:
        raise ValueError("k_averaged must be at least 1")
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    ms_error = float((resid**2).sum()) / ((n - 1) * (r - 1))
    sd_diff = math.sqrt(2.0 * ms_error)
    return sdc_from_sd_difference(sd_diff, k), sd_diff


def change_reliability(changes: ArrayLike, k_averaged: int | None = None) -> ChangeReliability:
    """ICC(2,1) with its 95 % interval and the Bruynesteyn SDC of ``subjects x readers`` change scores."""
    x = np.asarray(changes, dtype=float)
    sdc, sd_diff = sdc_bruynesteyn(x, k_averaged)
    return ChangeReliability(
        icc=icc_2_1(x),
        sd_difference=sd_diff,
        sdc=sdc,
        k_averaged=x.shape[1] if k_averaged is None else int(k_averaged),
        n_subjects=x.shape[0],
        n_readers=x.shape[1],
    )


# --------------------------------------------------------------------------- progressors and plots


@dataclass(frozen=True)
class ProgressorShare:
    """How many change scores pass a threshold, of how many."""

    label: str
    threshold: float
    count: int
    n: int

    @property
    def share(self) -> float:
        return self.count / self.n if self.n else float("nan")


def progressor_shares(changes: ArrayLike, sdc: float | None) -> list[ProgressorShare]:
    """Progressors: change > SDC (when known), change > 0.5 and change >= 5 units."""
    c = np.asarray(changes, dtype=float)
    c = c[~np.isnan(c)]
    rows = []
    if sdc is not None and not math.isnan(sdc):
        rows.append(ProgressorShare("> SDC", float(sdc), int((c > sdc).sum()), c.size))
    rows.append(ProgressorShare("> 0.5", ANY_PROGRESSION, int((c > ANY_PROGRESSION).sum()), c.size))
    rows.append(ProgressorShare(">= 5", RELEVANT_PROGRESSION, int((c >= RELEVANT_PROGRESSION).sum()), c.size))
    return rows


def cumulative_probability(changes: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points of a cumulative probability plot: sorted change scores against (i - 0.5) / n.

    The plot trials draw: every patient's change score, ascending, on the vertical axis against
    its cumulative probability on the horizontal one, so the share of progressors above any
    threshold can be read off where the curve crosses it.
    """
    c = np.sort(np.asarray(changes, dtype=float)[~np.isnan(np.asarray(changes, dtype=float))])
    n = c.size
    return (np.arange(1, n + 1) - 0.5) / max(n, 1), c


@dataclass(frozen=True)
class RegressionFlag:
    """How often one reader's total score fell over an interval; flagged above the share limit."""

    n_intervals: int
    n_negative: int  # total change below -0.5 (beyond a rounding-level change)
    n_joint_regressions: int  # area-level decreases summed over intervals
    flagged: bool

    @property
    def share(self) -> float:
        return self.n_negative / self.n_intervals if self.n_intervals else float("nan")


def regression_flag(
    totals: ArrayLike, joint_decreases: int = 0, max_share: float = REGRESSION_FLAG_SHARE
) -> RegressionFlag:
    """Flag a reader whose share of negative total changes (< -0.5) exceeds ``max_share``."""
    t = np.asarray(totals, dtype=float)
    t = t[~np.isnan(t)]
    negative = int((t < -ANY_PROGRESSION).sum())
    return RegressionFlag(
        n_intervals=t.size,
        n_negative=negative,
        n_joint_regressions=int(joint_decreases),
        flagged=bool(t.size and negative / t.size > max_share),
    )


@dataclass(frozen=True)
class ProgressorAccuracy:
    """Progressor calls against the true progression, with their counts."""

    sensitivity: float
    specificity: float
    n_true_progressors: int
    n_true_stable: int


def progressor_accuracy(estimated: ArrayLike, true: ArrayLike, threshold: float) -> ProgressorAccuracy:
    """Sensitivity and specificity of ``estimated > threshold`` against ``true > threshold``."""
    e = np.asarray(estimated, dtype=float) > threshold
    t = np.asarray(true, dtype=float) > threshold
    pos, neg = int(t.sum()), int((~t).sum())
    return ProgressorAccuracy(
        sensitivity=float((e & t).sum() / pos) if pos else float("nan"),
        specificity=float((~e & ~t).sum() / neg) if neg else float("nan"),
        n_true_progressors=pos,
        n_true_stable=neg,
    )


# --------------------------------------------------------------------------- monotone decoding


def monotone_log_transition(n_classes: int) -> NDArray[np.float64]:
    """The transition of "any non-decreasing step allowed, none preferred": 0 on and above the diagonal."""
    upper = np.triu(np.ones((n_classes, n_classes), dtype=bool))
    return np.where(upper, 0.0, -np.inf)


def monotone_viterbi(
    log_score: ArrayLike, log_transition: ArrayLike | None = None, log_initial: ArrayLike | None = None
) -> tuple[NDArray[np.int64], float]:
    """The best non-decreasing grade sequence of one series, exactly, by dynamic programming.

    ``log_score`` is ``timepoints x classes`` (e.g. per-timepoint class log-posteriors); the path
    ``z_0 <= z_1 <= ...`` maximises ``log_initial[z_0] + sum_t log_score[t, z_t] +
    sum_t log_transition[z_t, z_t+1]``. Entries of ``log_transition`` below the diagonal are
    ignored (a decrease is never allowed). Ties go to the lower grade. Returns (path, score).
    """
    paths, scores = monotone_viterbi_batch(np.asarray(log_score, dtype=float)[None], None, log_transition, log_initial)
    return paths[0], float(scores[0])


def monotone_viterbi_batch(
    log_score: NDArray[np.float64],
    lengths: ArrayLike | None = None,
    log_transition: ArrayLike | None = None,
    log_initial: ArrayLike | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """`monotone_viterbi` for ``chains x timepoints x classes`` scores, chains of ``lengths`` timepoints.

    Positions past a chain's length are ignored; their path entries repeat the chain's last grade.
    """
    s = np.asarray(log_score, dtype=float)
    C, T, K = s.shape
    n = np.full(C, T) if lengths is None else np.asarray(lengths, dtype=np.int64)
    trans = _masked_transition(log_transition, K)
    delta = s[:, 0] + (0.0 if log_initial is None else np.asarray(log_initial, dtype=float))
    back = np.zeros((C, T, K), dtype=np.int64)
    back[:, 0] = np.arange(K)
    for t in range(1, T):
        cand = delta[:, :, None] + trans[None]  # [c, from, to]
        # argmax returns the first maximum: the lowest earlier grade among equally good ones.
        best_from = cand.argmax(axis=1)
        step = np.take_along_axis(cand, best_from[:, None, :], axis=1)[:, 0] + s[:, t]
        live = (t < n)[:, None]
        delta = np.where(live, step, delta)
        back[:, t] = np.where(live, best_from, np.arange(K)[None, :])
    last = delta.argmax(axis=1)
    scores = delta[np.arange(C), last]
    path = np.zeros((C, T), dtype=np.int64)
    path[:, T - 1] = last
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = back[np.arange(C), t, path[:, t]]
    return path, scores


def monotone_marginals(
    log_score: NDArray[np.float64],
    lengths: ArrayLike | None = None,
    log_transition: ArrayLike | None = None,
    log_initial: ArrayLike | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Forward-backward over non-decreasing paths of ``chains x timepoints x classes`` scores.

    Returns per-position marginals (``chains x timepoints x classes``, zero past a chain's
    length), the expected transition counts summed over chains and positions (``classes x
    classes``, upper triangular) and each chain's log normaliser.
    """
    from scipy.special import logsumexp

    s = np.asarray(log_score, dtype=float)
    C, T, K = s.shape
    n = np.full(C, T) if lengths is None else np.asarray(lengths, dtype=np.int64)
    trans = _masked_transition(log_transition, K)
    init = np.zeros(K) if log_initial is None else np.asarray(log_initial, dtype=float)
    alpha = np.full((C, T, K), -np.inf)
    alpha[:, 0] = init + s[:, 0]
    for t in range(1, T):
        alpha[:, t] = logsumexp(alpha[:, t - 1, :, None] + trans[None], axis=1) + s[:, t]
    beta = np.zeros((C, T, K))
    for t in range(T - 2, -1, -1):
        nxt = logsumexp(trans[None] + (s[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
        beta[:, t] = np.where((t + 1 < n)[:, None], nxt, 0.0)
    log_z = logsumexp(alpha[np.arange(C), n - 1], axis=1)
    marg = np.exp(alpha + beta - log_z[:, None, None])
    marg[np.arange(T)[None, :] >= n[:, None]] = 0.0
    xi = np.zeros((K, K))
    for t in range(T - 1):
        live = t + 1 < n
        if not live.any():
            continue
        pair = (
            alpha[live, t, :, None] + trans[None] + (s[live, t + 1] + beta[live, t + 1])[:, None, :] - log_z[live, None, None]
        )
        xi += np.exp(pair).sum(axis=0)
    return marg, xi, log_z


def _masked_transition(log_transition: ArrayLike | None, K: int) -> NDArray[np.float64]:
    base = monotone_log_transition(K)
    if log_transition is None:
        return base
    t = np.asarray(log_transition, dtype=float)
    return np.where(np.isfinite(base), t, -np.inf)


# --------------------------------------------------------------------------- longitudinal Dawid-Skene


@dataclass
class LongitudinalResult:
    """Posteriors and monotone labels per task, with the fitted reader matrices and transitions."""

    posteriors: NDArray[np.float64]  # tasks x classes, marginals under the monotone model
    labels: NDArray[np.int64]  # tasks; the jointly best non-decreasing sequence per chain (Viterbi)
    confusion: NDArray[np.float64]  # workers x classes x classes, [w, true, given]
    initial: NDArray[np.float64]  # classes; grade frequencies at a chain's first timepoint
    transition: NDArray[np.float64]  # classes x classes, upper triangular, rows sum to 1
    iterations: int
    converged: bool
    log_likelihood: list[float] = field(default_factory=list)


def longitudinal_dawid_skene(
    task: ArrayLike,
    worker: ArrayLike,
    label: ArrayLike,
    *,
    chain: ArrayLike,
    position: ArrayLike,
    n_classes: int,
    n_workers: int | None = None,
    init_posteriors: ArrayLike | None = None,
    strength: float | None = None,
    decay: float = DEFAULT_DECAY,
    class_strength: float = DEFAULT_CLASS_STRENGTH,
    stay_strength: float = 10.0,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> LongitudinalResult:
    """Dawid-Skene whose latent grade sequence per joint is non-decreasing over the timepoints.

    Tasks are one joint area on one film; ``chain[i]`` names the series (patient, side, area) of
    task i and ``position[i]`` its chronological index in that series (0, 1, ...; unique per
    chain). The model: the grade at a chain's first timepoint is drawn from ``initial``, each next
    grade from row ``z`` of an upper-triangular ``transition`` (damage stays or grows, never
    heals), and each reader gives grade l to true grade k with their confusion ``pi[w, k, l]``.

    EM: the E-step is forward-backward over non-decreasing paths (`monotone_marginals`); the
    M-step is the MAP update of `scoring.ordinal_ds` for the reader rows (ordinal Dirichlet prior,
    ``strength`` pseudo-areas per row) and for the initial frequencies (``class_strength``), and for
    the transitions expected counts plus ``stay_strength`` pseudo-intervals on the diagonal (most
    joints do not change). Labels are the Viterbi path per chain under the fitted model, so each
    chain's labels are non-decreasing by construction. Starts from ``init_posteriors`` (e.g. a
    per-film fit's) or majority-vote shares.
    """
    t_idx = np.asarray(task, dtype=np.int64)
    w_idx = np.asarray(worker, dtype=np.int64)
    lab = np.asarray(label, dtype=np.int64)
    ch = np.asarray(chain, dtype=np.int64)
    pos = np.asarray(position, dtype=np.int64)
    K = int(n_classes)
    n_tasks = ch.size
    W = int(w_idx.max()) + 1 if n_workers is None and w_idx.size else int(n_workers or 0)
    if pos.size != n_tasks:
        raise ValueError("chain and position need one entry per task")
    if t_idx.size and (t_idx.max() >= n_tasks or lab.max() >= K or lab.min() < 0):
        raise ValueError("task or label out of range")
    chains, chain_of = np.unique(ch, return_inverse=True)
    C, T = chains.size, int(pos.max()) + 1 if pos.size else 1
    slot = np.full((C, T), -1, dtype=np.int64)
    slot[chain_of, pos] = np.arange(n_tasks)
    if (np.bincount(chain_of * T + pos, minlength=C * T) > 1).any():
        raise ValueError("two tasks share one chain position")
    lengths = np.zeros(C, dtype=np.int64)
    np.maximum.at(lengths, chain_of, pos + 1)
    if (slot[np.arange(T)[None, :] < lengths[:, None]] < 0).any():
        raise ValueError("a chain has a gap in its positions")

    s = default_strength(K) if strength is None else float(strength)
    kernel = ordinal_kernel(K, decay)
    if init_posteriors is not None:
        post = np.asarray(init_posteriors, dtype=float).copy()
    else:
        post = np.zeros((n_tasks, K))
        np.add.at(post, (t_idx, lab), 1.0)
        post[post.sum(axis=1) == 0] = 1.0
        post /= post.sum(axis=1, keepdims=True)
    first = post[slot[:, 0]]
    xi = np.zeros((K, K))
    history: list[float] = []
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):
        # M-step
        cell = w_idx * K + lab
        weights = post[t_idx]
        counts = np.stack([np.bincount(cell, weights=weights[:, k], minlength=W * K) for k in range(K)], axis=1)
        counts = counts.reshape(W, K, K).transpose(0, 2, 1)  # [w, given, true] -> [w, true, given]
        confusion = map_confusion_rows(counts, kernel[None], s)
        initial = map_class_priors(first.sum(axis=0), np.ones(K, dtype=bool), class_strength)
        trans_counts = np.triu(xi + stay_strength * np.eye(K) + np.triu(np.ones((K, K))) * 1e-3)
        transition = trans_counts / trans_counts.sum(axis=1, keepdims=True)
        # E-step
        log_given = np.log(confusion[w_idx, :, lab])  # labels x true grade
        emission = np.stack([np.bincount(t_idx, weights=log_given[:, k], minlength=n_tasks) for k in range(K)], axis=1)
        scores = np.zeros((C, T, K))
        live = slot >= 0
        scores[live] = emission[slot[live]]
        with np.errstate(divide="ignore"):
            log_t, log_i = np.log(transition), np.log(initial)
        marg, xi, log_z = monotone_marginals(scores, lengths, log_t, log_i)
        new_post = np.zeros((n_tasks, K))
        new_post[slot[live]] = marg[live]
        first = marg[:, 0]
        history.append(float(log_z.sum()))
        step = float(np.abs(new_post - post).max()) if n_tasks else 0.0
        post = new_post
        if step < tol:
            converged = True
            break
    paths, _ = monotone_viterbi_batch(scores, lengths, log_t, log_i)
    labels = np.zeros(n_tasks, dtype=np.int64)
    labels[slot[live]] = paths[live]
    return LongitudinalResult(
        posteriors=post,
        labels=labels,
        confusion=confusion,
        initial=initial,
        transition=transition,
        iterations=iterations,
        converged=converged,
        log_likelihood=history,
    )


def series_positions(keys: Sequence[tuple[object, object]]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Chain ids and positions for tasks keyed ``(series, order)``: order sorts within a series."""
    series = {}
    for key, _ in keys:
        series.setdefault(key, len(series))
    chain = np.array([series[k] for k, _ in keys], dtype=np.int64)
    position = np.zeros(len(keys), dtype=np.int64)
    by_chain: dict[int, list[tuple[object, int]]] = {}
    for i, (k, order) in enumerate(keys):
        by_chain.setdefault(series[k], []).append((order, i))
    for members in by_chain.values():
        for rank, (_, i) in enumerate(sorted(members, key=lambda m: m[0])):
            position[i] = rank
    return chain, position
