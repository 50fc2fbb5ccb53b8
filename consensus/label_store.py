"""Store a run's consensus labels as what changed since the previous run, and keep the arrays of
the stored consensus (`ConsensusState`) that the next run compares with and warm-starts from.

A recompute after one more read changes a few dozen labels out of hundreds of thousands; writing
a full copy of every label per run cost more than reading the grades and fitting them together.
A run therefore writes rows only for areas whose label, gold flag, reader count or spread
changed, or whose posterior moved by more than `POSTERIOR_TOLERANCE`, and marks the rows they
replace (and those of areas no longer graded) as superseded in its version. Unchanged rows of
earlier runs stay the run's labels (`ConsensusRun.labels`).
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.utils import timezone
from django.db.models import Q
from numpy.typing import NDArray

from .aggregation import AggregationResult
from .arrays import GradeSnapshot, LabelArrays
from .models import ConsensusLabel, ConsensusRun, ConsensusState

# A posterior that moved by less than this since the stored one is not written again. EM stops
# when no posterior moves by more than 1e-5 per iteration, which leaves posteriors up to about
# 3e-3 from the fixed point (scoring.dawid_skene), so differences below 1e-3 are the fit's own
# noise, not news: a cold and a warm-started fit of the same grades differ by that much.
POSTERIOR_TOLERANCE = 1e-3

LABEL_COLUMNS = ("run_id", "radiograph_id", "area_id", "label", "posterior", "is_gold", "n_readers", "spread", "uncertainty")
_FIELDS = ("key", "run_id", "label", "posterior", "is_gold", "n_readers", "spread")


def part_key(body_part: str, max_grade: int) -> str:
    return f"{body_part}-{max_grade}"


@dataclass
class PartLabels:
    """One grade grid's labels as arrays, sorted by `key` (radiograph id << 32 | area id)."""

    key: NDArray[np.int64]
    run_id: NDArray[np.int64]  # the run whose row holds the label
    label: NDArray[np.int64]
    posterior: NDArray[np.float64]
    is_gold: NDArray[np.bool_]
    n_readers: NDArray[np.int64]
    spread: NDArray[np.int64]

    def take(self, index: NDArray[np.int64]) -> PartLabels:
        return PartLabels(**{name: getattr(self, name)[index] for name in _FIELDS})

    @property
    def radiograph_id(self) -> NDArray[np.int64]:
        return self.key >> 32

    @property
    def area_id(self) -> NDArray[np.int64]:
        return self.key & 0xFFFFFFFF


def part_labels(*, run_id: int, part: LabelArrays, result: AggregationResult) -> PartLabels:
    """A fitted grade grid's labels, computed column-wise over all tasks at once."""
    n_grades = part.max_grade + 1
    if not result.tasks:
        return _empty(n_grades)
    order = np.asarray(result.tasks, dtype=np.int64)
    n_tasks = len(part.tasks)
    counts = np.bincount(part.task, minlength=n_tasks)
    high = np.full(n_tasks, -1, dtype=np.int64)
    low = np.full(n_tasks, np.iinfo(np.int64).max, dtype=np.int64)
    np.maximum.at(high, part.task, part.label)
    np.minimum.at(low, part.task, part.label)
    gold = np.fromiter(part.gold, dtype=np.int64, count=len(part.gold))
    # Every aggregator's labels dict lists the tasks in `result.tasks` order.
    labels = np.fromiter(result.labels.values(), dtype=np.int64, count=len(order))
    key = (part.tasks[order, 0].astype(np.int64) << 32) | part.tasks[order, 1].astype(np.int64)
    out = PartLabels(
        key=key,
        run_id=np.full(len(order), run_id, dtype=np.int64),
        label=labels,
        posterior=np.asarray(result.posterior, dtype=float).reshape(len(order), n_grades),
        is_gold=np.isin(order, gold),
        n_readers=counts[order],
        spread=np.where(counts > 0, high - low, 0)[order],
    )
    return out.take(np.argsort(key, kind="stable"))


def _empty(n_grades: int) -> PartLabels:
    zero = np.zeros(0, dtype=np.int64)
    return PartLabels(
        key=zero, run_id=zero, label=zero, posterior=np.zeros((0, n_grades)), is_gold=np.zeros(0, dtype=bool),
        n_readers=zero, spread=zero,
    )  # fmt: skip


@dataclass(frozen=True)
class PartChanges:
    written: PartLabels  # rows to write for this run
    closed: PartLabels  # stored rows this run supersedes
    state: PartLabels  # the consensus as stored after this run


def part_changes(*, new: PartLabels, old: PartLabels | None) -> PartChanges:
    """What a run writes and supersedes, given its labels and the stored ones (pure arrays)."""
    if old is None or old.posterior.shape[1:] != new.posterior.shape[1:]:
        old = _empty(new.posterior.shape[1])
    at = np.searchsorted(old.key, new.key)
    found = at < len(old.key)
    found[found] = old.key[at[found]] == new.key[found]
    same = np.zeros(len(new.key), dtype=bool)
    if found.any():
        i, j = np.flatnonzero(found), at[found]
        moved = np.abs(new.posterior[i] - old.posterior[j]).max(axis=1, initial=0.0)
        same[i] = (
            (new.label[i] == old.label[j])
            & (new.is_gold[i] == old.is_gold[j])
            & (new.n_readers[i] == old.n_readers[j])
            & (new.spread[i] == old.spread[j])
            & (moved <= POSTERIOR_TOLERANCE)
        )
    kept_old = np.zeros(len(old.key), dtype=bool)
    kept_old[at[same]] = True
    state = new.take(np.arange(len(new.key)))
    # An unchanged area keeps the stored row, so later comparisons start from what is stored.
    state_same = old.take(at[same])
    for name in _FIELDS:
        getattr(state, name)[same] = getattr(state_same, name)
    return PartChanges(written=new.take(np.flatnonzero(~same)), closed=old.take(np.flatnonzero(~kept_old)), state=state)


# The arrays kept per grade grid, in the narrowest types that hold them: a million grades make
# a third of a million labels, and this row is read and replaced by every run.
_STATE_TYPES = {"key": np.int64, "run_id": np.int64, "label": np.int8, "posterior": np.float32, "is_gold": np.bool_,
                "n_readers": np.int16, "spread": np.int8}  # fmt: skip


_WORKING_TYPES = {"posterior": np.float64, "is_gold": np.bool_}


def state_pack(parts: dict[str, PartLabels], snapshot: GradeSnapshot | None = None) -> bytes:
    arrays = {f"{name}/{field}": getattr(labels, field).astype(_STATE_TYPES[field]) for name, labels in parts.items() for field in _FIELDS}
    if snapshot is not None:
        rows = snapshot.rows
        arrays.update({
            "_grades/area_ids": snapshot.area_ids, "_grades/reads": snapshot.reads,
            "_grades/radiograph": rows[:, 0].astype(np.int32), "_grades/area": rows[:, 1].astype(np.int32),
            "_grades/reader": rows[:, 2].astype(np.int32), "_grades/value": rows[:, 3].astype(np.int8),
        })  # fmt: skip
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def state_load(data: bytes) -> tuple[dict[str, PartLabels], GradeSnapshot | None]:
    """The stored labels per grade grid, and the snapshot of the grades they were fitted on
    (None in arrays stored without one)."""
    with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as archive:
        names = {key.split("/", 1)[0] for key in archive.files if not key.startswith("_")}
        parts = {
            name: PartLabels(
                **{field: archive[f"{name}/{field}"].astype(_WORKING_TYPES.get(field, np.int64)) for field in _FIELDS}
            )
            for name in names
        }  # fmt: skip
        snapshot = None
        if "_grades/reads" in archive.files:
            rows = np.stack([archive[f"_grades/{name}"].astype(np.int64) for name in ("radiograph", "area", "reader", "value")], axis=1)
            snapshot = GradeSnapshot(
                area_ids=archive["_grades/area_ids"].astype(np.int64), reads=archive["_grades/reads"].astype(np.int64), rows=rows
            )
    return parts, snapshot


def state_unpack(data: bytes) -> dict[str, PartLabels]:
    return state_load(data)[0]


def state_arrays_read(*, state_id: int) -> bytes:
    """The arrays of a ConsensusState row, fetched in binary: the ORM would send them as hex text."""
    if connection.vendor != "postgresql":
        return bytes(ConsensusState.objects.values_list("arrays", flat=True).get(pk=state_id))
    import psycopg  # PostgreSQL only

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:  # server-side binding, binary results
        cursor.execute(f"SELECT arrays FROM {ConsensusState._meta.db_table} WHERE id = %s", [state_id], binary=True)
        (data,) = cursor.fetchone()
    return bytes(data)


def state_arrays_write(*, state_id: int, run_id: int, arrays: bytes, fit_states: dict) -> None:
    """Replace a ConsensusState row's arrays, sent as one binary parameter rather than hex text."""
    if connection.vendor != "postgresql":
        ConsensusState.objects.filter(pk=state_id).update(run_id=run_id, arrays=arrays, fit_states=fit_states, updated_at=timezone.now())
        return
    import psycopg  # PostgreSQL only

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"UPDATE {ConsensusState._meta.db_table} SET run_id = %s, arrays = %b, fit_states = %s::jsonb, updated_at = %s "
            "WHERE id = %s",
            [run_id, arrays, json.dumps(fit_states), timezone.now(), state_id],
        )


@dataclass(frozen=True)
class StoredState:
    """What `stored_state` found: the state row, the run its arrays describe, and the arrays
    (None when they do not describe the newest successful run)."""

    state: ConsensusState | None
    run_id: int | None
    parts: dict[str, PartLabels] | None
    snapshot: GradeSnapshot | None


def stored_state(*, project_id: int, dimension: str, before_version: int | None = None) -> StoredState:
    """The stored arrays, if they describe the newest successful run (before `before_version`)."""
    state = ConsensusState.objects.filter(project_id=project_id, dimension=dimension).defer("arrays").first()
    runs = ConsensusRun.objects.filter(project_id=project_id, dimension=dimension, status=ConsensusRun.Status.OK)
    if before_version is not None:
        runs = runs.filter(version__lt=before_version)
    latest = runs.order_by("-version").values_list("pk", flat=True).first()
    if state is None or state.run_id != latest:
        return StoredState(state=state, run_id=latest, parts=None, snapshot=None)
    parts, snapshot = state_load(state_arrays_read(state_id=state.pk))
    return StoredState(state=state, run_id=latest, parts=parts, snapshot=snapshot)


def stored_state_still(*, loaded: StoredState, project_id: int, dimension: str, before_version: int) -> StoredState:
    """`loaded` if it still describes the newest successful run before `before_version`, else a fresh read."""
    latest = (
        ConsensusRun.objects.filter(project_id=project_id, dimension=dimension, status=ConsensusRun.Status.OK, version__lt=before_version)
        .order_by("-version")
        .values_list("pk", flat=True)
        .first()
    )
    state_run = ConsensusState.objects.filter(project_id=project_id, dimension=dimension).values_list("run_id", flat=True).first()
    if loaded.parts is not None and loaded.run_id == latest == state_run:
        return loaded
    return stored_state(project_id=project_id, dimension=dimension, before_version=before_version)


def labels_supersede_all(*, run: ConsensusRun) -> None:
    """Without usable arrays of the stored consensus, supersede every open label and write all."""
    ConsensusLabel.objects.filter(
        run__project_id=run.project_id, run__dimension=run.dimension, superseded_in__isnull=True
    ).exclude(run=run).update(superseded_in=run.version)


def labels_supersede(*, run: ConsensusRun, closed: PartLabels) -> None:
    if not len(closed.key):
        return
    table = ConsensusLabel._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET superseded_in = %s FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) "
                f"AS c (run_id, radiograph_id, area_id) WHERE {table}.run_id = c.run_id "
                f"AND {table}.radiograph_id = c.radiograph_id AND {table}.area_id = c.area_id "
                # The runs listed once more as a plain filter, so the planner walks the unique
                # (run, radiograph, area) index instead of scanning every run's labels.
                f"AND {table}.run_id = ANY(%s) AND {table}.superseded_in IS NULL",
                [run.version, closed.run_id.tolist(), closed.radiograph_id.tolist(), closed.area_id.tolist(),
                 np.unique(closed.run_id).tolist()],
            )
        return
    keys = list(zip(closed.run_id.tolist(), closed.radiograph_id.tolist(), closed.area_id.tolist()))
    for start in range(0, len(keys), 300):
        match = Q()
        for run_id, radiograph_id, area_id in keys[start : start + 300]:
            match |= Q(run_id=run_id, radiograph_id=radiograph_id, area_id=area_id)
        ConsensusLabel.objects.filter(match, superseded_in__isnull=True).update(superseded_in=run.version)


def labels_write(*, run: ConsensusRun, rows: PartLabels, max_grade: int) -> int:
    """Write `rows` as this run's label rows; returns how many."""
    n = len(rows.key)
    if not n:
        return 0
    posterior = rows.posterior
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(posterior > 0, posterior * np.log(np.where(posterior > 0, posterior, 1.0)), 0.0)
    # Entropy over log(number of grades): hands and feet rank on one adjudication queue.
    uncertainty = -terms.sum(axis=1) / math.log(max_grade + 1) + 0.0  # + 0.0 turns -0.0 into 0.0
    if connection.vendor == "postgresql":
        _labels_copy(run_id=run.pk, rows=rows, uncertainty=uncertainty)
        return n
    ConsensusLabel.objects.bulk_create(
        (
            ConsensusLabel(
                run=run, radiograph_id=r, area_id=a, label=lab, posterior=p, is_gold=g, n_readers=c, spread=s, uncertainty=u
            )
            for r, a, lab, p, g, c, s, u in zip(
                rows.radiograph_id.tolist(), rows.area_id.tolist(), rows.label.tolist(), posterior.tolist(),
                rows.is_gold.tolist(), rows.n_readers.tolist(), rows.spread.tolist(), uncertainty.tolist(),
            )
        ),
        batch_size=5000,
    )  # fmt: skip
    return n


def _labels_copy(*, run_id: int, rows: PartLabels, uncertainty: NDArray[np.float64]) -> None:
    # Binary COPY of fixed-width rows built by numpy, into a temporary table whose posterior is a
    # float8[]; PostgreSQL turns the arrays into JSON on the way into the label table. No Python
    # object per row or per probability: the text COPY this replaces spent seconds formatting
    # floats for a few hundred thousand labels.
    n, k = rows.posterior.shape
    header = np.dtype(
        [("fields", ">i2"), ("l_radiograph", ">i4"), ("radiograph", ">i4"), ("l_area", ">i4"), ("area", ">i4"),
         ("l_label", ">i4"), ("label", ">i2"), ("l_gold", ">i4"), ("gold", "u1"), ("l_readers", ">i4"), ("readers", ">i2"),
         ("l_spread", ">i4"), ("spread", ">i2"), ("l_uncertainty", ">i4"), ("uncertainty", ">f8"),
         ("l_posterior", ">i4"), ("ndim", ">i4"), ("has_null", ">i4"), ("oid", ">i4"), ("dim", ">i4"), ("lbound", ">i4"),
         ("values", [("l", ">i4"), ("v", ">f8")], (k,))]
    )  # fmt: skip
    body = np.zeros(n, dtype=header)
    body["fields"] = 8
    for name, size, values in (
        ("radiograph", 4, rows.radiograph_id), ("area", 4, rows.area_id), ("label", 2, rows.label),
        ("gold", 1, rows.is_gold), ("readers", 2, rows.n_readers), ("spread", 2, rows.spread),
        ("uncertainty", 8, uncertainty),
    ):  # fmt: skip
        body[f"l_{name}"] = size
        body[name] = values
    body["l_posterior"] = 20 + 12 * k
    body["ndim"], body["oid"], body["dim"], body["lbound"] = 1, 701, k, 1  # 701: float8
    body["values"]["l"] = 8
    body["values"]["v"] = rows.posterior
    payload = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + body.tobytes() + b"\xff\xff"
    table = ConsensusLabel._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS consensus_label_incoming (radiograph_id int, area_id int, "
            "label smallint, is_gold boolean, n_readers smallint, spread smallint, uncertainty float8, posterior float8[]) "
            "ON COMMIT DELETE ROWS"
        )
        with cursor.cursor.copy(
            "COPY consensus_label_incoming (radiograph_id, area_id, label, is_gold, n_readers, spread, uncertainty, posterior) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(payload)
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(LABEL_COLUMNS)}) SELECT %s, radiograph_id, area_id, label, "
            "to_jsonb(posterior), is_gold, n_readers, spread, uncertainty FROM consensus_label_incoming",
            [run_id],
        )
        cursor.execute("TRUNCATE consensus_label_incoming")
