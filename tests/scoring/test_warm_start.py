"""EM warm-started from a previous fit's parameters: fewer iterations, the same fixed point."""
from __future__ import annotations

import numpy as np
import pytest

from scoring.dawid_skene import dawid_skene
from scoring.ordinal_ds import ordinal_dawid_skene


def _study(seed: int, n_tasks: int = 3000, n_workers: int = 4, K: int = 5):
    rng = np.random.default_rng(seed)
    truth = rng.choice(K, size=n_tasks, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    confusion = np.stack([np.full((K, K), 0.04) + np.eye(K) * (0.6 + 0.05 * w) for w in range(n_workers)])
    confusion /= confusion.sum(axis=2, keepdims=True)
    task = np.repeat(np.arange(n_tasks), 3)
    worker = np.concatenate([rng.choice(n_workers, size=3, replace=False) for _ in range(n_tasks)])
    label = np.array([rng.choice(K, p=confusion[w, truth[t]]) for t, w in zip(task, worker)])
    return task, worker, label, K


@pytest.mark.parametrize("fit", [dawid_skene, ordinal_dawid_skene])
def test_a_warm_start_after_a_few_more_labels_needs_fewer_iterations_and_gives_the_cold_labels(fit) -> None:
    task, worker, label, K = _study(seed=3)
    earlier = fit(task[:-30], worker[:-30], label[:-30], n_classes=K, n_tasks=task.max() + 1, n_workers=4)
    cold = fit(task, worker, label, n_classes=K, n_workers=4)
    warm = fit(task, worker, label, n_classes=K, n_workers=4, init_params=(earlier.priors, earlier.confusion))
    assert warm.converged and warm.iterations < cold.iterations
    np.testing.assert_array_equal(warm.labels, cold.labels)
    assert np.abs(warm.posteriors - cold.posteriors).max() < 3e-3


def test_parameters_of_the_wrong_shape_are_refused() -> None:
    task, worker, label, K = _study(seed=4, n_tasks=50)
    with pytest.raises(ValueError, match="init_params must be priors"):
        dawid_skene(task, worker, label, n_classes=K, n_workers=4, init_params=(np.full(K, 1 / K), np.ones((3, K, K))))
