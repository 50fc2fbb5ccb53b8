"""Consensus aggregation: crowd-kit glue on the full grade grid, ties, gold labels, recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from consensus.aggregation import AGGREGATORS, aggregate, compare_aggregators

# Small, fast settings for the slow aggregators; results on the cases below do not depend on them.
FAST = {"MACE": {"n_iter": 5}, "GLAD": {"n_iter": 5}}


def frame(rows: list[tuple[object, object, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def clear_majority(
    task_ids: list[object], worker_ids: list[object]
) -> tuple[pd.DataFrame, dict[object, int]]:
    """Five readers per task, four of them give the true grade, the fifth is one grade off."""
    truth = {task: [0, 0, 0, 1, 1, 2, 3, 0, 1, 0, 2, 3][i % 12] for i, task in enumerate(task_ids)}
    rows = []
    for i, task in enumerate(task_ids):
        for j, worker in enumerate(worker_ids):
            off = j == i % len(worker_ids)
            rows.append((task, worker, truth[task] + 1 if off else truth[task]))
    return frame(rows), truth


@pytest.mark.parametrize("name", AGGREGATORS)
@pytest.mark.parametrize("ids", ["int", "str"])
def test_every_aggregator_runs_on_installed_pandas_and_finds_clear_majority(name: str, ids: str) -> None:
    # Guards the open pandas bound of crowd-kit: a pandas release that breaks an aggregator, or
    # silently changes what it computes, fails here. "str" ids exercise pandas' string dtype.
    tasks = list(range(12)) if ids == "int" else [f"rg{i}:mcp_E__{i % 5}" for i in range(12)]
    workers = list(range(5)) if ids == "int" else [f"reader-{c}" for c in "abcde"]
    data, truth = clear_majority(tasks, workers)
    res = aggregate(data, n_grades=6, aggregator=name, params=FAST.get(name))

    assert res.labels == truth
    assert res.posterior.shape == (12, 6)
    np.testing.assert_allclose(res.posterior.sum(axis=1), 1.0)
    assert [res.posteriors[t].argmax() for t in tasks] == [truth[t] for t in tasks]
    # grade 5 is never given: it exists on the grid with zero probability
    assert np.all(res.posterior[:, 5] == 0)
    assert (res.n_tasks, res.n_workers, res.n_labels) == (12, 5, 60)
    assert res.versions["pandas"] == pd.__version__


def test_unknown_aggregator_names_the_allowed_ones() -> None:
    data, _ = clear_majority(list(range(3)), list(range(3)))
    with pytest.raises(ValueError, match="DawidSkene, MajorityVote, Wawa, OneCoinDawidSkene, GLAD, MACE"):
        aggregate(data, n_grades=4, aggregator="ZeroBasedSkill")


def test_bad_parameters_are_a_value_error_naming_the_allowed_ones() -> None:
    data, _ = clear_majority(list(range(3)), list(range(3)))
    with pytest.raises(ValueError, match="allowed: max_iter, tol, tol_posterior"):
        aggregate(data, n_grades=4, params={"n_iter": 3})


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(1, "a", 0), (1, "a", 1)], "more than once"),
        ([(1, "a", 4)], "0..3"),
        ([(1, "a", 1.5)], "whole-number"),
        ([(1, None, 1)], "missing"),
    ],
)
def test_invalid_labels_are_refused(rows: list[tuple[object, object, float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        aggregate(frame(rows), n_grades=4)  # type: ignore[arg-type]


def test_posterior_and_confusion_cover_grades_nobody_gave() -> None:
    # Erosion scale 0..5, readers only use 0, 1 and 3.
    rows = []
    for task in range(30):
        grade = (0, 1, 3)[task % 3]
        rows += [(task, "a", grade), (task, "b", grade), (task, "c", 0 if task % 10 == 9 else grade)]
    res = aggregate(frame(rows), n_grades=6)

    assert res.posterior.shape == (30, 6)
    np.testing.assert_allclose(res.posterior.sum(axis=1), 1.0)
    assert np.all(res.posterior[:, [2, 4, 5]] == 0)
    for reader in "abc":
        conf = res.reader_confusion[reader]
        assert conf.shape == (6, 6)
        np.testing.assert_allclose(conf.sum(axis=1), 1.0)
        # true grades 2, 4, 5 never occur: no evidence, so a uniform row
        np.testing.assert_allclose(conf[[2, 4, 5]], 1 / 6)
        np.testing.assert_allclose(res.reader_support[reader][[2, 4, 5]], 0.0)
    # c says 0 on tasks 9, 19, 29 (true grades 0, 1, 3): wrong on 1 of the 10 grade-3 tasks
    np.testing.assert_allclose(res.reader_confusion["c"][3, [0, 3]], [0.1, 0.9], atol=1e-6)
    np.testing.assert_allclose(res.reader_confusion["a"][3, 3], 1.0, atol=1e-6)


def test_tied_vote_goes_to_the_grade_nearest_the_median_then_the_lower_grade() -> None:
    rows = [
        # votes 0,0,3,3,2: 0 and 3 tie; median 2 is nearer 3 (plain "lower grade" would say 0)
        ("t1", "a", 0), ("t1", "b", 0), ("t1", "c", 3), ("t1", "d", 3), ("t1", "e", 2),
        # votes 1,3: tie, median 2 is equally near both -> the lower grade, 1
        ("t2", "a", 3), ("t2", "b", 1),
        # votes 2,2,5,5,0: 2 and 5 tie, median 2 -> 2
        ("t3", "a", 5), ("t3", "b", 2), ("t3", "c", 5), ("t3", "d", 2), ("t3", "e", 0),
    ]  # fmt: skip
    res = aggregate(frame(rows), n_grades=6, aggregator="MajorityVote")
    assert res.labels == {"t1": 3, "t2": 1, "t3": 2}


def test_readers_with_few_labels_are_flagged_but_still_counted() -> None:
    data, truth = clear_majority(list(range(12)), ["a", "b", "c", "d", "e"])
    newcomer = frame([(0, "new", 3), (1, "new", 3)])
    res = aggregate(pd.concat([data, newcomer]), n_grades=6, min_labels_per_reader=5)

    assert res.few_label_readers == ["new"]
    assert res.reader_label_counts["new"] == 2 and res.n_workers == 6
    assert "new" in res.reader_confusion  # estimated, but flagged as resting on two grades
    assert res.labels == truth  # two stray grades do not outvote four readers


def test_gold_labels_steer_dawid_skene_and_override_every_aggregator() -> None:
    # Two readers always disagree: a says 0, b says 1. Adjudication says b was right on 5 tasks.
    rows = [(t, "a", 0) for t in range(20)] + [(t, "b", 1) for t in range(20)]
    gold = {t: 1 for t in range(5)}
    gold["only-gold"] = 2  # adjudicated, no reader grade, a grade nobody gave
    data = frame(rows)

    ds = aggregate(data, n_grades=3, gold=gold)
    # DS learns from the gold tasks that b is reliable and a calls 1 as 0, so all 20 become 1
    assert [ds.labels[t] for t in range(20)] == [1] * 20
    np.testing.assert_allclose(ds.reader_confusion["a"][1], [1, 0, 0], atol=1e-6)
    assert ds.labels["only-gold"] == 2
    np.testing.assert_array_equal(ds.posteriors["only-gold"], [0, 0, 1])
    assert ds.gold_tasks == [0, 1, 2, 3, 4, "only-gold"]

    mv = aggregate(data, n_grades=3, aggregator="MajorityVote", gold=gold)
    # majority vote has no way to learn from gold: only the gold tasks change; the other ties
    # (median 0.5) fall to the lower grade
    assert [mv.labels[t] for t in range(20)] == [1] * 5 + [0] * 15
    np.testing.assert_array_equal(mv.posteriors[0], [0, 1, 0])
    np.testing.assert_array_equal(mv.posteriors[7], [0.5, 0.5, 0])

    assert compare_aggregators(data, 3, ["DawidSkene", "MajorityVote"], gold=gold).pairs == {
        ("DawidSkene", "MajorityVote"): 15
    }


def test_gold_grade_outside_the_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="gold grade 7"):
        aggregate(frame([(1, "a", 0)]), n_grades=5, gold={1: 7})


def test_dawid_skene_reports_iterations_convergence_and_params() -> None:
    data, _ = clear_majority(list(range(12)), list(range(5)))
    full = aggregate(data, n_grades=6, params={"max_iter": 50, "tol_posterior": 1e-6})
    assert full.converged is True and 1 < full.iterations < 50  # type: ignore[operator]
    assert full.params["max_iter"] == 50 and full.params["tol_posterior"] == 1e-6
    assert len(full.loss_history) == full.iterations
    cut = aggregate(data, n_grades=6, params={"max_iter": 1})
    assert (cut.iterations, cut.converged) == (1, False)

    mv = aggregate(data, n_grades=6, aggregator="MajorityVote")
    assert (mv.iterations, mv.converged, mv.reader_confusion) == (None, None, {})


def test_one_coin_confusion_is_built_from_each_readers_skill() -> None:
    data, _ = clear_majority(list(range(12)), list(range(5)))
    res = aggregate(data, n_grades=6, aggregator="OneCoinDawidSkene")
    conf = res.reader_confusion[0]
    skill = conf[0, 0]
    # each reader is off on 2 or 3 of 12 tasks -> skill near 0.8; errors spread over 5 other grades
    assert 0.7 < skill < 0.95
    np.testing.assert_allclose(np.diag(conf), skill)
    np.testing.assert_allclose(conf[0, 1:], (1 - skill) / 5)
    np.testing.assert_allclose(conf.sum(axis=1), 1.0)


def test_compare_aggregators_counts_no_change_on_unanimous_grades() -> None:
    rows = [(t, w, t % 4) for t in range(8) for w in "abc"]
    assert compare_aggregators(frame(rows), 4, ["DawidSkene", "MajorityVote", "Wawa"]).pairs == {
        ("DawidSkene", "MajorityVote"): 0,
        ("DawidSkene", "Wawa"): 0,
        ("MajorityVote", "Wawa"): 0,
    }


def _confusion(kind: str, k: int) -> np.ndarray:
    m = np.zeros((k, k))
    for t in range(k):
        if kind == "accurate":  # right 85%, otherwise one grade off
            m[t, t] = 0.85
            for g in (t - 1, t + 1):
                if 0 <= g < k:
                    m[t, g] += 0.075
        elif kind == "severe":  # calls one grade higher 35% of the time
            m[t, t] = 0.6
            m[t, min(t + 1, k - 1)] += 0.35
            m[t, max(t - 1, 0)] += 0.05
        else:  # noisy: right 60%, otherwise anything
            m[t] = 0.1
            m[t, t] = 0.6
        m[t] /= m[t].sum()
    return m


def test_dawid_skene_recovers_simulated_readers_and_beats_majority_vote() -> None:
    k, n = 5, 400
    rng = np.random.default_rng(7)
    truth = rng.choice(k, size=n, p=[0.5, 0.25, 0.12, 0.08, 0.05])  # skewed, like real erosion grades
    readers = {kind: _confusion(kind, k) for kind in ("accurate", "severe", "noisy")}
    rows = [(i, name, int(rng.choice(k, p=m[t]))) for i, t in enumerate(truth) for name, m in readers.items()]
    data = frame(rows)

    ds = aggregate(data, n_grades=k)
    mv = aggregate(data, n_grades=k, aggregator="MajorityVote")
    ds_acc = np.mean([ds.labels[i] == t for i, t in enumerate(truth)])
    mv_acc = np.mean([mv.labels[i] == t for i, t in enumerate(truth)])
    best_reader = max(
        np.mean(data[data.worker == name].sort_values("task")["label"].to_numpy() == truth)
        for name in readers
    )
    assert ds_acc > mv_acc and ds_acc > best_reader
    for name, true_m in readers.items():
        est = ds.reader_confusion[name]
        assert np.abs(np.diag(est) - np.diag(true_m)).mean() < 0.1, name
