from django.urls import path

from . import apis

urlpatterns = [
    path("radiographs/<int:radiograph_id>/heatmaps/<str:area_code>.png", apis.RadiographHeatmapApi.as_view(), name="api-radiograph-heatmap"),
]
