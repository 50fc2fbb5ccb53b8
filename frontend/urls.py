from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.i18n import JavaScriptCatalog

from . import series, views, visits

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("projects/<int:project_id>/worklist/", views.worklist, name="worklist"),
    path("projects/<int:project_id>/next/", views.worklist_next, name="worklist-next"),
    path("read/<int:assignment_id>/", views.workspace, name="workspace"),
    path("read/<int:assignment_id>/scores.csv", views.workspace_csv, name="workspace-csv"),
    path("read/<int:assignment_id>/print/", views.workspace_print, name="workspace-print"),
    path("visit/<int:visit_id>/", visits.visit_workspace, name="visit-workspace"),
    path("series/<int:patient_id>/<str:side>/", series.series_workspace, name="series-workspace"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["frontend"]), name="javascript-catalog"),
]
