from django.urls import path

from . import apis, training_views, views

urlpatterns = [
    path("projects/<int:project_id>/model/", views.model_dashboard, name="model-dashboard"),
    path("projects/<int:project_id>/model/versions/<int:number>/promote/", views.model_version_promote, name="model-version-promote"),
    path("projects/<int:project_id>/model/training/", training_views.training_page, name="training-page"),
    path("projects/<int:project_id>/model/training/start/", training_views.training_start, name="training-start"),
    path("projects/<int:project_id>/model/training/<int:run_id>/cancel/", training_views.training_run_cancel, name="training-run-cancel"),
    path("projects/<int:project_id>/model/training/<int:run_id>/retry/", training_views.training_run_retry, name="training-run-retry"),
    path("projects/<int:project_id>/model/training/<int:run_id>/progress.json", training_views.training_run_progress, name="training-run-progress"),
    path("api/radiographs/<int:radiograph_id>/heatmaps/<str:area_code>.png", apis.RadiographHeatmapApi.as_view(), name="api-radiograph-heatmap"),
    path("api/heatmap-methods/", apis.HeatmapMethodListApi.as_view(), name="api-heatmap-methods"),
    path("api/projects/<int:project_id>/model/versions/", apis.ModelVersionListApi.as_view(), name="api-model-versions"),
    path("api/projects/<int:project_id>/model/versions/<int:number>/promote/", apis.ModelVersionPromoteApi.as_view(), name="api-model-version-promote"),
    path("api/projects/<int:project_id>/model/analytics/", apis.SuggestionAnalyticsApi.as_view(), name="api-model-analytics"),
]
