"""The degeneracy guard on constructed collapses, on a shifted Dawid-Skene fit and on sound fits."""
from __future__ import annotations

import numpy as np

from scoring.dawid_skene import dawid_skene
from scoring.guard import degeneracy_check, majority_vote_labels
from scoring.ordinal_ds import ordinal_dawid_skene
from scoring.readers import scenario_simulate


def _feet(seed: int):
    return scenario_simulate("feet_small", seed=seed)


def test_a_consensus_collapsed_to_one_grade_trips_the_guard_with_kappa_in_words() -> None:
    study = _feet(0)
    collapsed = np.zeros(study.truth.size, dtype=np.int64)
    verdict = degeneracy_check(study.task, study.worker, study.label, collapsed, n_classes=11)
    assert verdict.tripped
    assert "Every reader's kappa against the consensus is below 0.2" in verdict.reason
    assert "readers agree with each other" in verdict.reason


def test_a_reversed_scale_trips_the_majority_check() -> None:
    study = scenario_simulate("default", seed=1)
    mv = majority_vote_labels(study.task, study.label, study.truth.size, 6)
    verdict = degeneracy_check(study.task, study.worker, study.label, 5 - mv, n_classes=6)
    assert verdict.tripped
    assert "agrees with the readers' majority on only" in verdict.reason
    assert verdict.figures["agreement_with_majority"] < 0.1


def test_the_shifted_dawid_skene_fit_of_a_small_feet_study_trips_and_the_ordinal_fit_does_not() -> None:
    # Seed 26 reproduces the collapse seen on real feet data: plain DS reads every low grade one
    # up (accuracy 0.44 where majority vote reaches 0.67), yet each reader still agrees with it.
    study = _feet(26)
    args = (study.task, study.worker, study.label)
    plain = dawid_skene(*args, n_classes=11, n_tasks=study.truth.size)
    assert np.mean(plain.labels == study.truth) < 0.5
    verdict = degeneracy_check(*args, plain.labels, n_classes=11, confusion=plain.confusion, support=plain.support)
    assert verdict.tripped
    assert "no reader most often gives" in verdict.reason and "grades 1" in verdict.reason
    ordinal = ordinal_dawid_skene(*args, n_classes=11, n_tasks=study.truth.size)
    sound = degeneracy_check(*args, ordinal.labels, n_classes=11, confusion=ordinal.confusion, support=ordinal.support)
    assert not sound.tripped, sound.reason
    assert np.mean(ordinal.labels == study.truth) > 0.65


def test_sound_fits_on_every_scenario_pass_the_guard() -> None:
    for name in ("default", "careless", "sparse", "compressed"):
        study = scenario_simulate(name, seed=0, size=0.3)
        fit = ordinal_dawid_skene(study.task, study.worker, study.label, n_classes=study.n_grades, n_tasks=study.truth.size)
        verdict = degeneracy_check(
            study.task, study.worker, study.label, fit.labels,
            n_classes=study.n_grades, confusion=fit.confusion, support=fit.support,
        )  # fmt: skip
        assert not verdict.tripped, (name, verdict.reason)


def test_a_tripped_fit_falls_back_to_the_ordinal_labels_and_says_so() -> None:
    import pandas as pd

    from consensus.aggregation import aggregate, aggregate_guarded

    study = _feet(26)
    frame = pd.DataFrame({"task": study.task, "worker": study.worker, "label": study.label})
    plain = aggregate(frame, n_grades=11, aggregator="DawidSkene")
    assert plain.guard["tripped"]
    result = aggregate_guarded(frame, n_grades=11, aggregator="DawidSkene")
    assert result.aggregator == "OrdinalDawidSkene"
    assert result.guard["tripped"] and result.guard["requested"] == "DawidSkene"
    assert result.guard["reason"].startswith("The DawidSkene consensus looks degenerate:")
    assert result.guard["reason"].endswith("The labels come from OrdinalDawidSkene instead.")
    labels = np.array([result.labels[t] for t in range(study.truth.size)])
    assert np.mean(labels == study.truth) > 0.65
    # A sound request is returned as it is.
    sound = aggregate_guarded(frame, n_grades=11, aggregator="OrdinalDawidSkene")
    assert sound.aggregator == "OrdinalDawidSkene" and not sound.guard["tripped"]
