"""Regularised, ordinal-aware Dawid-Skene: MAP EM with Dirichlet priors that know grades are ordered.

Plain Dawid-Skene (``scoring.dawid_skene``) estimates every cell of every reader's confusion
matrix from the data alone, with a 1e-10 floor. That is fine with thousands of areas per grade and
badly wrong with a handful: on a 0-10 feet grid read by three readers the rows of high grades rest
on one or two areas, EM can settle on a solution where the consensus no longer resembles what
anybody said (collapse, label switching), and the class prior of rare grades sinks towards 0 so
borderline areas of a rare grade are pulled down to the common one.

This estimator is the same EM over the same label patterns with two changes to the M-step, which
make it the maximum a posteriori fit under Dirichlet priors:

* **Confusion rows.** Reader w's row for true grade k gets pseudo-counts
  ``strength * m[k, :]`` added to its expected counts before normalising. The prior mean ``m``
  is an ordinal kernel, ``m[k, l]`` proportional to ``exp(-|k - l| / decay)``: most mass on the
  diagonal, falling off with distance, so a thin row is pulled towards "mostly right, usually one
  grade off" instead of towards whatever three areas said. On top, the kernel is mixed with the
  panel's pooled row (every reader's expected counts for true grade k, summed): the prior is
  re-estimated from the panel at each iteration (empirical Bayes of the prior mean, with the
  kernel as its own hyperprior), so a reader with few reads is shrunk towards how the panel reads,
  not only towards the kernel. Rows with hundreds of areas are hardly moved.
* **Class frequencies.** A symmetric Dirichlet adds ``class_strength`` pseudo-areas to every grade
  in the model, so a rare grade keeps a prior that lets the readers' evidence win.

Strength rule (documented, not fitted per study): ``strength = 2 * n_classes`` pseudo-areas per
row (12 on the 0-5 erosion scale, 22 on the 0-10 feet scale: a wider grid spreads the same reads
over more cells, so each row needs more help), ``decay = 0.6`` grades, ``pool = 0.5`` (half the
prior mean is the panel's row) and ``class_strength = 10`` pseudo-areas per grade. These values
were chosen on the validation matrix (``manage.py validate_consensus --matrix``, seeds 0-5): on
the small feet study a quarter or half of this strength left grade-balanced accuracy 0.02-0.08
below majority vote, twice it changed nothing there and cost 0.002 on the hand scenarios; a class
strength of 2 instead of 10 cost 0.01 grade-balanced on feet. The README holds the table.

The stopping rule is the one of ``scoring.dawid_skene`` (largest posterior step); the recorded
objective is the observed-data log-likelihood, which MAP-EM does not have to increase
monotonically, so only the posterior test is used by default.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scoring.dawid_skene import DawidSkeneResult, _em_run, _Groups, _problem_prepare

DEFAULT_DECAY = 0.6
DEFAULT_POOL = 0.5
DEFAULT_CLASS_STRENGTH = 10.0


def default_strength(n_classes: int) -> float:
    """Pseudo-areas per confusion row: 2 * n_classes (see the module docstring)."""
    return 2.0 * n_classes


def ordinal_kernel(n_classes: int, decay: float = DEFAULT_DECAY) -> NDArray[np.float64]:
    """K x K row-stochastic prior mean: ``m[k, l]`` proportional to ``exp(-|k - l| / decay)``."""
    if decay <= 0:
        raise ValueError("decay must be positive")
    grades = np.arange(n_classes)
    w = np.exp(-np.abs(grades[:, None] - grades[None, :]) / decay)
    return w / w.sum(axis=1, keepdims=True)


def ordinal_dawid_skene(
    task: ArrayLike,
    worker: ArrayLike,
    label: ArrayLike,
    *,
    n_classes: int,
    n_tasks: int | None = None,
    n_workers: int | None = None,
    gold: ArrayLike | None = None,
    init_posteriors: ArrayLike | None = None,
    init_params: tuple[ArrayLike, ArrayLike] | None = None,
    strength: float | None = None,
    decay: float = DEFAULT_DECAY,
    pool: float = DEFAULT_POOL,
    class_strength: float = DEFAULT_CLASS_STRENGTH,
    max_iter: int = 500,
    tol_posterior: float | None = 1e-5,
) -> DawidSkeneResult:
    """MAP Dawid-Skene under ordinal Dirichlet priors; arguments as ``scoring.dawid_skene``.

    ``strength`` (pseudo-areas per confusion row; default ``default_strength(n_classes)``),
    ``decay`` (grades over which the prior mean falls by e), ``pool`` (share of the prior mean
    taken from the panel's pooled row, 0..1) and ``class_strength`` (pseudo-areas per grade on
    the class frequencies). ``strength=0, class_strength=0`` is plain Dawid-Skene without the
    1e-10 floor on grades a reader never gave.
    """
    started = time.perf_counter()
    if not 0.0 <= pool <= 1.0:
        raise ValueError("pool must lie in 0..1")
    s = default_strength(int(n_classes)) if strength is None else float(strength)
    if s < 0 or class_strength < 0:
        raise ValueError("prior strengths must be non-negative")
    problem = _problem_prepare(task, worker, label, n_classes, n_tasks, n_workers, gold)
    K, W, groups, active = problem.K, problem.W, problem.groups, problem.active
    kernel = ordinal_kernel(K, decay)
    # Grades outside the model get no prior mass: nothing could ever be assigned to them.
    kernel = kernel * active[None, :]
    kernel /= np.maximum(kernel.sum(axis=1, keepdims=True), 1e-300)

    def m_step(weighted: NDArray[np.float64]):
        return _map_m_step(weighted, groups, problem.n_graded, active, kernel, s, pool, class_strength, W, K)

    # Only the posterior step decides the stop: the MAP objective is not the likelihood.
    return _em_run(
        problem, m_step, init_posteriors=init_posteriors, init_params=init_params, max_iter=max_iter, tol=None,
        tol_posterior=tol_posterior, started=started,
    )  # fmt: skip


def map_confusion_rows(
    counts: NDArray[np.float64], prior_mean: NDArray[np.float64], strength: float
) -> NDArray[np.float64]:
    """MAP rows of one reader: ``(counts[k] + strength * prior_mean[k]) / (n_k + strength)``.

    The posterior mode of a Dirichlet with parameters ``1 + strength * prior_mean[k]`` after
    ``counts[k]`` observations; a row with no counts and no prior mass stays uniform.
    """
    smoothed = counts + strength * prior_mean
    totals = smoothed.sum(axis=-1, keepdims=True)
    K = counts.shape[-1]
    return np.divide(smoothed, totals, out=np.full_like(smoothed, 1.0 / K), where=totals > 0)


def map_class_priors(totals: NDArray[np.float64], active: NDArray[np.bool_], class_strength: float) -> NDArray[np.float64]:
    """MAP class frequencies: ``(expected areas_k + class_strength) / (n + class_strength * K_active)``."""
    smoothed = np.where(active, totals + class_strength, 0.0)
    total = smoothed.sum()
    return smoothed / total if total > 0 else np.full(totals.size, 1.0 / totals.size)


def _map_m_step(
    weighted: NDArray[np.float64],
    groups: _Groups,
    n_graded: float,
    active: NDArray[np.bool_],
    kernel: NDArray[np.float64],
    strength: float,
    pool: float,
    class_strength: float,
    W: int,
    K: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    total = weighted.sum(axis=1) - weighted[:, groups.ungraded_at].sum(axis=1)
    priors = map_class_priors(total, active, class_strength) if n_graded else np.full(K, 1.0 / K)
    counts = np.asarray(weighted @ groups.B).reshape(K, W, K).transpose(1, 0, 2)  # [w, true, given]
    support = counts.sum(axis=2)
    # The panel's pooled row, itself smoothed by the kernel so a grade nobody has yet is ordinal.
    pooled = map_confusion_rows(counts.sum(axis=0), kernel, strength)
    prior_mean = (1.0 - pool) * kernel + pool * pooled
    confusion = map_confusion_rows(counts, prior_mean[None, :, :], strength)
    return priors, confusion, support
