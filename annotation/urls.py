from django.urls import path

from . import apis

urlpatterns = [
    path("projects/", apis.ProjectListApi.as_view(), name="api-project-list"),
    path("projects/<int:project_id>/", apis.ProjectDetailApi.as_view(), name="api-project-detail"),
    path("projects/<int:project_id>/worklist/", apis.WorklistApi.as_view(), name="api-worklist"),
    path("projects/<int:project_id>/worklist/next/", apis.WorklistNextApi.as_view(), name="api-worklist-next"),
    path("projects/<int:project_id>/assignments/", apis.ProjectAssignmentListApi.as_view(), name="api-project-assignments"),
    path("assignments/<int:assignment_id>/", apis.AssignmentDetailApi.as_view(), name="api-assignment-detail"),
    path("assignments/<int:assignment_id>/grades/", apis.GradeBulkSaveApi.as_view(), name="api-grade-bulk-save"),
    path("assignments/<int:assignment_id>/submit/", apis.AssignmentSubmitApi.as_view(), name="api-assignment-submit"),
    path("radiographs/<int:radiograph_id>/", apis.RadiographDetailApi.as_view(), name="api-radiograph-detail"),
    path("radiographs/<int:radiograph_id>/image/", apis.RadiographImageApi.as_view(), name="api-radiograph-image"),
]

# Reader workspace.
urlpatterns += [
    path("assignments/<int:assignment_id>/suggestions/", apis.AssignmentSuggestionsApi.as_view(), name="api-assignment-suggestions"),
    path("assignments/<int:assignment_id>/landmarks/", apis.AssignmentLandmarksApi.as_view(), name="api-assignment-landmarks"),
    path("radiographs/<int:radiograph_id>/rendition/<slug:kind>/", apis.RadiographRenditionApi.as_view(), name="api-radiograph-rendition"),
]

# Ingestion.
urlpatterns += [
    path("projects/<int:project_id>/radiographs/", apis.RadiographUploadApi.as_view(), name="api-radiograph-upload"),
]

# Reading by visit.
urlpatterns += [
    path("visits/<int:visit_id>/submit/", apis.VisitSubmitApi.as_view(), name="api-visit-submit"),
]

# Reading a patient's series (paired reading modes).
from . import series_apis  # noqa: E402

urlpatterns += [
    path("series/<int:patient_id>/<str:side>/submit/", series_apis.SeriesSubmitApi.as_view(), name="api-series-submit"),
]
