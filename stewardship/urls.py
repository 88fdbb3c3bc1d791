from django.urls import path

from stewardship.views.approvals import ApprovalsView
from stewardship.views.audit import AuditView
from stewardship.views.dashboard import AccuracyView, DashboardView
from stewardship.views.golden import (
    GoldenAsOfView,
    GoldenHistoryCsvView,
    GoldenHistoryView,
    GoldenListView,
    GoldenView,
)
from stewardship.views.integrations import IntegrationsView
from stewardship.views.models import ModelListView, ModelView, RunView
from stewardship.views.queue import CandidateView, NextCandidateView, QueueView
from stewardship.views.rules import RuleEditView, RuleListView

app_name = "stewardship"

urlpatterns = [
    path("", DashboardView.as_admin_view(), name="dashboard"),
    path("queue/", QueueView.as_admin_view(), name="queue"),
    path("queue/next/", NextCandidateView.as_admin_view(), name="queue_next"),
    path("queue/approvals/", ApprovalsView.as_admin_view(), name="approvals"),
    path("candidates/<int:pk>/", CandidateView.as_admin_view(), name="candidate"),
    path("golden/", GoldenListView.as_admin_view(), name="golden_list"),
    path("golden/<str:golden_id>/", GoldenView.as_admin_view(), name="golden"),
    path(
        "golden/<str:golden_id>/history/", GoldenHistoryView.as_admin_view(), name="golden_history"
    ),
    path(
        "golden/<str:golden_id>/history.csv",
        GoldenHistoryCsvView.as_admin_view(),
        name="golden_history_csv",
    ),
    path("golden/<str:golden_id>/as-of/", GoldenAsOfView.as_admin_view(), name="golden_as_of"),
    path("rules/", RuleListView.as_admin_view(), name="rules"),
    path("rules/<str:entity>/<str:attribute>/", RuleEditView.as_admin_view(), name="rule"),
    path("accuracy/", AccuracyView.as_admin_view(), name="accuracy"),
    path("audit/", AuditView.as_admin_view(), name="audit"),
    path("integrations/", IntegrationsView.as_admin_view(), name="integrations"),
    path("models/", ModelListView.as_admin_view(), name="models"),
    path("models/<int:pk>/", ModelView.as_admin_view(), name="model"),
    path("runs/<int:pk>/", RunView.as_admin_view(), name="run"),
]
