from django.urls import path

from . import apis, views

urlpatterns = [
    path("projects/<int:project_id>/model/", views.model_dashboard, name="model-dashboard"),
    path("projects/<int:project_id>/model/versions/<int:number>/promote/", views.model_version_promote, name="model-version-promote"),
    path("api/radiographs/<int:radiograph_id>/heatmaps/<str:area_code>.png", apis.RadiographHeatmapApi.as_view(), name="api-radiograph-heatmap"),
    path("api/heatmap-methods/", apis.HeatmapMethodListApi.as_view(), name="api-heatmap-methods"),
    path("api/projects/<int:project_id>/model/versions/", apis.ModelVersionListApi.as_view(), name="api-model-versions"),
    path("api/projects/<int:project_id>/model/versions/<int:number>/promote/", apis.ModelVersionPromoteApi.as_view(), name="api-model-version-promote"),
    path("api/projects/<int:project_id>/model/analytics/", apis.SuggestionAnalyticsApi.as_view(), name="api-model-analytics"),
]
