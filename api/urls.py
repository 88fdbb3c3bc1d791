from django.urls import path
from rest_framework.routers import SimpleRouter

from api import views

app_name = "api"

router = SimpleRouter(trailing_slash=False)
router.register("webhooks/subscriptions", views.WebhookSubscriptionViewSet, basename="webhook")

urlpatterns = [
    path(
        "sources/<str:system>/<str:entity>/batch",
        views.SourceBatchView.as_view(),
        name="source-batch",
    ),
    path(
        "sources/<str:system>/<str:entity>/<path:source_key>",
        views.SourceRecordView.as_view(),
        name="source-record",
    ),
    path("xref/<str:entity>/lookup", views.XrefLookupView.as_view(), name="xref-lookup"),
    path(
        "xref/<str:entity>/<str:system>/<path:source_key>",
        views.XrefView.as_view(),
        name="xref-detail",
    ),
    path("match/<str:entity>", views.MatchProbeView.as_view(), name="match-probe"),
    path("golden/<str:entity>", views.GoldenListView.as_view(), name="golden-list"),
    path(
        "golden/<str:entity>/<str:golden_id>",
        views.GoldenDetailView.as_view(),
        name="golden-detail",
    ),
    path(
        "golden/<str:entity>/<str:golden_id>/history",
        views.GoldenHistoryView.as_view(),
        name="golden-history",
    ),
    path("events", views.EventFeedView.as_view(), name="events"),
    *router.urls,
]
