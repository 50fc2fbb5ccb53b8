"""Pages and API of the consensus app; included at the site root by config/urls.py."""
from django.urls import path

from . import adjudication_views, apis, progression_views, views

urlpatterns = [
    path("projects/<int:project_id>/agreement/", views.agreement_dashboard, name="consensus-dashboard"),
    path("projects/<int:project_id>/agreement/recompute/", views.agreement_recompute, name="consensus-recompute"),
    path("projects/<int:project_id>/agreement/adjudicate/", views.agreement_adjudicate, name="consensus-adjudicate"),
    path(
        "projects/<int:project_id>/agreement/adjudicate/<int:radiograph_id>/<str:area_code>/",
        adjudication_views.adjudication_viewer, name="consensus-adjudication-viewer",
    ),
    path("projects/<int:project_id>/progression/", progression_views.progression_page, name="consensus-progression"),
    path("projects/<int:project_id>/progression/fusion/", progression_views.progression_fusion_set, name="consensus-progression-fusion"),
    path(
        "projects/<int:project_id>/progression/previous-consensus/",
        progression_views.progression_previous_consensus_set,
        name="consensus-progression-previous-consensus",
    ),
    path("api/projects/<int:project_id>/consensus/", apis.ConsensusSummaryApi.as_view(), name="api-consensus-summary"),
    path("api/projects/<int:project_id>/consensus/runs/", apis.ConsensusRunListApi.as_view(), name="api-consensus-runs"),
    path("api/projects/<int:project_id>/consensus/labels/", apis.ConsensusLabelListApi.as_view(), name="api-consensus-labels"),
    path("api/projects/<int:project_id>/consensus/agreement/", apis.AgreementApi.as_view(), name="api-consensus-agreement"),
    path("api/projects/<int:project_id>/consensus/comparison/", apis.AggregatorComparisonApi.as_view(), name="api-consensus-comparison"),
    path("api/projects/<int:project_id>/consensus/disputed/", apis.DisputedListApi.as_view(), name="api-consensus-disputed"),
    path("api/projects/<int:project_id>/consensus/adjudications/", apis.AdjudicationListCreateApi.as_view(), name="api-consensus-adjudications"),
    path("api/projects/<int:project_id>/consensus/recompute/", apis.RecomputeApi.as_view(), name="api-consensus-recompute"),
    path("api/projects/<int:project_id>/consensus/exports/<str:name>", apis.ConsensusExportApi.as_view(), name="api-consensus-export"),
]
