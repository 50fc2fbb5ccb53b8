"""The validation matrix: scenarios of the one reader simulator x aggregators, at a small size."""
from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from consensus.validation_matrix import interval, matrix_run, matrix_summary
from scoring.readers import SCENARIOS, scenario_simulate


def test_every_scenario_draws_its_design() -> None:
    feet = scenario_simulate("feet_small", seed=0)
    assert feet.n_grades == 11 and feet.truth.size == 288 and feet.n_labels == 288 * 3
    sparse = scenario_simulate("sparse", seed=0, size=0.2)
    assert np.bincount(sparse.task).max() == 2 and sparse.worker.max() == 9
    compressed = scenario_simulate("compressed", seed=0, size=0.5)
    assert compressed.label[compressed.worker == 1].max() == 3  # never gives 4 or 5
    assert compressed.label[compressed.worker == 0].max() == 5
    large = SCENARIOS["large"]
    assert large.n_tasks * large.per_task >= 100_000
    # The realised matrices are row-stochastic.
    assert np.allclose(feet.confusion.sum(axis=2), 1.0)


def test_a_drifting_reader_moves_from_lenient_to_severe() -> None:
    study = scenario_simulate("drift", seed=0)
    mine = study.worker == 0
    early = mine & (study.task < study.truth.size // 5)
    late = mine & (study.task >= 4 * study.truth.size // 5)
    bias = lambda at: float(np.mean(study.label[at] - study.truth[study.task[at]]))  # noqa: E731
    assert bias(early) < -0.1 < 0.3 < bias(late)


def test_interval_is_student_t_over_seeds() -> None:
    mean, half = interval([0.8, 0.9, 1.0])
    assert mean == pytest.approx(0.9) and half == pytest.approx(4.303 * 0.1 / np.sqrt(3))


def test_the_matrix_scores_aggregators_against_the_truth() -> None:
    cells = matrix_run(seeds=[0, 1], scenarios=["careless"], aggregators=["MajorityVote", "OrdinalDawidSkene"], size=0.3)
    summary = matrix_summary(cells)
    mv, ods = summary[("careless", "MajorityVote")], summary[("careless", "OrdinalDawidSkene")]
    # A near-random reader fools the vote far more than a model that learns who is careless.
    assert ods["accuracy"][0] > mv["accuracy"][0] + 0.02
    assert 0.0 < ods["confusion_error"][0] < 0.1 and 0.0 < mv["confusion_error"][0] < 0.1
    assert ods["guard"][0] == 0.0


def test_validate_consensus_matrix_prints_the_table_at_a_small_size() -> None:
    out = io.StringIO()
    call_command(
        "validate_consensus", "--matrix", "--seeds", "2", "--size", "0.1",
        "--scenarios", "default", "feet_small", stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    for name in ("MajorityVote", "crowd-kit DS", "DawidSkene", "OrdinalDawidSkene"):
        assert f"| feet_small | {name} |" in text
    assert "Mean and 95% interval over 2 seeds" in text


def test_validate_consensus_matrix_refuses_zero_seeds() -> None:
    with pytest.raises(CommandError, match="--seeds"):
        call_command("validate_consensus", "--matrix", "--seeds", "0")
