"""The uncertainty-ranked worklist: order from the active version's suggestions, calibration reads
interleaved at the policy's rate, readers for new radiographs, and a re-rank after every promotion.

Personas here are two readers of one project (`ranker_1`, `ranker_2`) and its lead; each reader
sees only their own worklist, which is what the priorities below order.
"""
from __future__ import annotations

import numpy as np
import pytest

from annotation import services as annotation_services
from annotation.models import Assignment, JointArea, Membership, Radiograph
from consensus.models import AdjudicatedLabel
from modeling import promotion, services
from modeling.ranking import worklist_rerank
from modeling.demo import demo_seed
from modeling.ml import acquisition
from modeling.ml.phantoms import PhantomConfig
from modeling.models import LearningPolicy, ModelVersion, Suggestion

from ..conftest import make_radiograph, make_user
from .test_training_services import TINY

CONFIDENT = {"erosion": [0.97, 0.01, 0.01, 0.01, 0.0, 0.0], "jsn": [0.97, 0.01, 0.01, 0.01, 0.0]}
FLAT = {"erosion": [1 / 6] * 6, "jsn": [0.2] * 5}
MILD = {"erosion": [0.7, 0.25, 0.05, 0.0, 0.0, 0.0], "jsn": [0.7, 0.25, 0.05, 0.0, 0.0]}


@pytest.fixture
def project(schemes):
    project = annotation_services.project_create(name="Ranked hands", slug="ranked", readers_per_radiograph=2)
    for name in ("ranker_1", "ranker_2"):
        annotation_services.membership_set(user=make_user(name), project=project, role=Membership.Role.READER)
    annotation_services.membership_set(user=make_user("ranked_lead"), project=project, role=Membership.Role.LEAD)
    return project


@pytest.fixture
def active_version(project):
    return ModelVersion.objects.create(project=project, number=1, status=ModelVersion.Status.ACTIVE)


def suggest(version: ModelVersion, radiograph: Radiograph, doubt: dict[str, dict] | None = None) -> None:
    """Confident suggestions for every hand area, except the areas named in `doubt` (code -> distribution)."""
    doubt = doubt or {}
    areas = JointArea.objects.filter(scheme=version.project.scheme, body_part="hand")
    Suggestion.objects.bulk_create(
        Suggestion(
            radiograph=radiograph, model_version=version, area=area,
            distribution=doubt.get(area.code, CONFIDENT[area.dimension]),
            label=int(np.argmax(doubt.get(area.code, CONFIDENT[area.dimension]))),
        )
        for area in areas
    )


def worklist(project, username: str) -> list[int]:
    """Radiograph ids of a reader's pending reads, in the order the reader gets them."""
    return list(
        Assignment.objects.filter(radiograph__project=project, reader__username=username, status=Assignment.Status.PENDING)
        .order_by("priority", "id")
        .values_list("radiograph_id", flat=True)
    )


@pytest.mark.django_db
def test_the_unsure_radiograph_comes_first_and_calibration_takes_every_tenth_place(project, active_version):
    radiographs = [make_radiograph(project, f"RANK-{i:02d}") for i in range(20)]
    for i, radiograph in enumerate(radiographs):
        doubt = {}
        if i == 7:
            doubt = {"pip_E__3": FLAT["erosion"], "mcp_J__2": FLAT["jsn"]}
        elif i == 12:
            doubt = {"mcp_E__4": MILD["erosion"]}
        suggest(active_version, radiograph, doubt)
    # Three radiographs already read and adjudicated by a lead: gold for calibration.
    gold = [make_radiograph(project, f"GOLD-{i}") for i in range(3)]
    area = JointArea.objects.get(scheme=project.scheme, body_part="hand", code="mcp_E__2")
    for radiograph in gold:
        radiograph.status = Radiograph.Status.READ
        radiograph.save(update_fields=["status"])
        AdjudicatedLabel.objects.create(radiograph=radiograph, area=area, grade=1)

    ranking = worklist_rerank(project=project)

    assert ranking.strategy == "rare_boost" and ranking.model_version == 1
    assert ranking.order[:2] == [radiographs[7].pk, radiographs[12].pk]
    assert ranking.calibration == [r.pk for r in gold]
    # 20 radiographs x 2 readers, plus 3 calibration reads for each reader.
    assert ranking.readers_assigned == 46
    gold_ids = {r.pk for r in gold}
    for reader in ("ranker_1", "ranker_2"):
        order = worklist(project, reader)
        assert len(order) == 23
        assert order[:2] == [radiographs[7].pk, radiographs[12].pk]
        # Positions 10 and 20 hold calibration reads; the last one follows once ranked work runs out.
        assert [i + 1 for i, rid in enumerate(order) if rid in gold_ids] == [10, 20, 23]
    policy = LearningPolicy.objects.get(project=project)
    assert policy.ranked_with == active_version and policy.last_ranked_at is not None


@pytest.mark.django_db
def test_the_calibration_rate_follows_the_policy_and_zero_turns_it_off(project, active_version):
    radiographs = [make_radiograph(project, f"RATE-{i:02d}") for i in range(8)]
    for radiograph in radiographs:
        suggest(active_version, radiograph)
    gold = make_radiograph(project, "RATE-GOLD")
    Radiograph.objects.filter(pk=gold.pk).update(status=Radiograph.Status.READ)
    LearningPolicy.objects.create(project=project, calibration_every=3, calibration_radiograph_ids=[gold.pk])
    worklist_rerank(project=project)
    assert worklist(project, "ranker_1").index(gold.pk) == 2

    LearningPolicy.objects.filter(project=project).update(calibration_every=0)
    ranking = worklist_rerank(project=project)
    assert ranking.calibration == []
    # The calibration read already given stays in the list but no longer jumps the queue.
    assert worklist(project, "ranker_1") == [*ranking.order, gold.pk]


@pytest.mark.django_db
def test_both_hands_of_a_visit_are_read_together(project, active_version):
    left = make_radiograph(project, "VISIT-A", laterality="L")
    right = make_radiograph(project, "VISIT-A", laterality="R")
    other = make_radiograph(project, "VISIT-B")
    suggest(active_version, left, {"pip_E__2": FLAT["erosion"], "pip_E__3": FLAT["erosion"], "pip_E__4": FLAT["erosion"]})
    suggest(active_version, right)
    suggest(active_version, other, {"pip_E__2": MILD["erosion"], "pip_E__3": MILD["erosion"]})
    assert left.visit_id == right.visit_id
    ranking = worklist_rerank(project=project)
    # The right hand is confident, yet it follows its left hand rather than the moderately unsure film.
    assert ranking.order == [left.pk, right.pk, other.pk]
    assert ranking.scores[other.pk] > ranking.scores[right.pk]


@pytest.mark.django_db
def test_a_new_radiograph_gets_the_projects_number_of_readers_and_started_reads_keep_their_place(project, active_version):
    started = make_radiograph(project, "STARTED")
    suggest(active_version, started)
    new = make_radiograph(project, "NEW")
    suggest(active_version, new, {"pip_E__2": FLAT["erosion"]})
    assert not new.assignments.exists()
    reader_1 = project.memberships.get(user__username="ranker_1").user
    (read,) = annotation_services.assignments_create(radiograph=started, readers=[reader_1], priority=42.0)
    Assignment.objects.filter(pk=read.pk).update(status=Assignment.Status.IN_PROGRESS)

    worklist_rerank(project=project)

    assert set(new.assignments.values_list("reader__username", flat=True)) == {"ranker_1", "ranker_2"}
    read.refresh_from_db()
    assert read.priority == 42.0  # a read in progress is continued first anyway; its row is left alone
    assert started.assignments.count() == 2


@pytest.mark.django_db
def test_a_radiograph_without_suggestions_sits_at_the_median(project, active_version):
    scored = [make_radiograph(project, f"MED-{i}") for i in range(3)]
    suggest(active_version, scored[0], {"pip_E__2": FLAT["erosion"]})
    suggest(active_version, scored[1], {"pip_E__2": MILD["erosion"]})
    suggest(active_version, scored[2])
    unscored = make_radiograph(project, "MED-NONE")
    ranking = worklist_rerank(project=project)
    assert ranking.scores[unscored.pk] == pytest.approx(ranking.scores[scored[1].pk])
    # Equal scores: the earlier visit first.
    assert ranking.order == [scored[0].pk, scored[1].pk, unscored.pk, scored[2].pk]


@pytest.mark.django_db
def test_strategies_rank_differently_and_one_that_needs_the_network_is_refused(project, active_version):
    near, far = make_radiograph(project, "NEAR"), make_radiograph(project, "FAR")
    suggest(active_version, near, {"pip_E__2": [0.5, 0.5, 0, 0, 0, 0]})
    suggest(active_version, far, {"pip_E__2": [0.55, 0, 0, 0, 0.45, 0]})
    # Entropy prefers the flatter 0-or-1 doubt; the ordinal spread prefers the 0-or-4 doubt.
    assert worklist_rerank(project=project, strategy="entropy").order == [near.pk, far.pk]
    assert worklist_rerank(project=project, strategy="expected_error").order == [far.pk, near.pk]
    first = worklist_rerank(project=project, strategy="random").order
    assert worklist_rerank(project=project, strategy="random").order == first
    with pytest.raises(ValueError, match="cannot rank from stored suggestions"):
        worklist_rerank(project=project, strategy="bald")


@pytest.fixture
def seeded(schemes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return demo_seed(slug="ranked-demo", patients=3, read_radiographs=2, seed=5, config=PhantomConfig(width=192, height=240)).project


@pytest.mark.django_db
def test_a_promotion_reranks_the_worklist_by_the_new_versions_suggestions(seeded, django_capture_on_commit_callbacks):
    version = services.model_version_train(run_id=services.model_version_request(project=seeded, epochs=1, config=TINY, enqueue=False).pk)
    Assignment.objects.filter(radiograph__project=seeded).update(priority=99.0)
    with django_capture_on_commit_callbacks(execute=True):
        promotion.model_version_promote(version=version)

    policy = LearningPolicy.objects.get(project=seeded)
    assert policy.ranked_with == version
    # The expected order, computed here from the suggestions the promotion's inference wrote.
    to_read = list(seeded.radiographs.exclude(status=Radiograph.Status.READ))
    assert len(to_read) == 4
    distributions = {}
    for radiograph in to_read:
        rows = Suggestion.objects.filter(radiograph=radiograph, model_version=version).order_by("area_id")
        assert rows.count() == 31
        distributions[radiograph.pk] = [row.distribution for row in rows]

    def rare_boost(parts):
        probs, n_grades = acquisition.pad_distributions(parts)
        return float(acquisition.item_scores("rare_boost", probs[None], n_grades=n_grades)[0])

    scores = {rid: rare_boost(parts) for rid, parts in distributions.items()}
    visit = {r.pk: r.visit_id for r in to_read}
    visit_score = {v: rare_boost([d for rid, parts in distributions.items() if visit[rid] == v for d in parts]) for v in set(visit.values())}
    expected = sorted(scores, key=lambda rid: (-visit_score[visit[rid]], visit[rid], -scores[rid], rid))
    for reader in ("reader1", "reader2", "reader3"):
        assert worklist(seeded, reader) == expected
        priorities = Assignment.objects.filter(reader__username=reader, status=Assignment.Status.PENDING).values_list("priority", flat=True)
        assert sorted(priorities) == [0.0, 1.0, 2.0, 3.0]
