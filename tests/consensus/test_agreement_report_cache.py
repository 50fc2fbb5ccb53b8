"""The agreement report kept per consensus run: computed once by the recompute, read by the page."""
from __future__ import annotations

import pytest
from django.urls import reverse

from consensus import agreement_report, recompute, selectors
from consensus.models import AgreementReportCache, ConsensusSettings

from .conftest import areas_of, submit_grades

pytestmark = pytest.mark.django_db


@pytest.fixture
def recomputed(world):
    """r1 read by reader_a and reader_b, then the recompute a submission leads to, run in place."""
    areas = areas_of(world.alpha)
    submit_grades(world.r1, world.users["reader_a"], {a.code: 0 for a in areas} | {"pip_E__2": 1})
    submit_grades(world.r1, world.users["reader_b"], {a.code: 0 for a in areas} | {"pip_E__2": 3})
    ConsensusSettings.objects.update_or_create(project=world.alpha, defaults={"request_seq": 1, "computed_seq": 0})
    runs = recompute.consensus_recompute(project_id=world.alpha.pk, seq=1)
    assert len(runs) == 2
    return world


def test_the_recompute_keeps_each_scales_report_equal_to_a_fresh_one(recomputed) -> None:
    project = recomputed.alpha
    for scale in selectors.scale_list(project=project):
        kept = agreement_report.agreement_report_cached(project=project, scale=scale)
        assert kept is not None
        report, model_names = kept
        fresh = agreement_report.agreement_report(project=project, scale=scale)
        assert agreement_report.report_to_json(report) == agreement_report.report_to_json(fresh)
        assert report.run == fresh.run and model_names == []
    assert AgreementReportCache.objects.filter(run__project=project).count() == 2


def test_the_lead_page_shows_the_kept_report_and_computes_a_group_itself(client, recomputed) -> None:
    project = recomputed.alpha
    cache = AgreementReportCache.objects.get(run__project=project, run__dimension="erosion")
    # Mark the kept report so the page can only show the mark if it read the kept one.
    report = cache.report
    report["readers"][0]["reader"] = "kept-report-reader"
    AgreementReportCache.objects.filter(pk=cache.pk).update(report=report)
    client.force_login(recomputed.users["lead"])
    url = reverse("consensus-dashboard", args=[project.pk])
    assert "kept-report-reader" in client.get(url).content.decode()
    assert "kept-report-reader" not in client.get(url, {"group": "pip"}).content.decode()


def test_a_new_run_without_a_kept_report_is_computed_on_the_page(client, recomputed) -> None:
    from consensus import services

    project = recomputed.alpha
    cache = AgreementReportCache.objects.get(run__project=project, run__dimension="jsn")
    report = cache.report
    report["readers"][0]["reader"] = "kept-report-reader"
    AgreementReportCache.objects.filter(pk=cache.pk).update(report=report)
    services.consensus_compute(project=project, dimension="erosion")  # a run with no kept report
    client.force_login(recomputed.users["lead"])
    body = client.get(reverse("consensus-dashboard", args=[project.pk])).content.decode()
    assert "Weighted accuracy" in body and "reader_a" in body
    assert "kept-report-reader" not in body  # every scale computed afresh, none half from the kept ones
