"""API v1 routes. Operations typed per entity type are routed once per declared entity
(`mdm.entities`), before a catch-all that answers 404 `unknown_entity` for any other name."""

from django.urls import URLPattern, path

from api import views
from mdm.entities import ENTITIES

app_name = "api"


def per_entity(route: str, view: type[views.KeystoneView], name: str) -> list[URLPattern]:
    return [
        path(route.format(entity=entity), views.for_entity(view, entity), name=f"{entity}-{name}")
        for entity in ENTITIES
    ]


unknown_entity = views.UnknownEntityView.as_view()

urlpatterns = [
    path("xref/<str:entity>/lookup", views.XrefLookupView.as_view(), name="xref-lookup"),
    path(
        "xref/<str:entity>/<str:system>/<path:source_key>",
        views.XrefView.as_view(),
        name="xref-detail",
    ),
    *per_entity("sources/<str:system>/{entity}/batch", views.SourceBatchView, "source-batch"),
    *per_entity(
        "sources/<str:system>/{entity}/<path:source_key>", views.SourceRecordView, "source-record"
    ),
    *per_entity("match/{entity}", views.MatchProbeView, "match-probe"),
    *per_entity("golden/{entity}", views.GoldenListView, "golden-list"),
    *per_entity("golden/{entity}/<str:golden_id>", views.GoldenDetailView, "golden-detail"),
    *per_entity(
        "golden/{entity}/<str:golden_id>/history", views.GoldenHistoryView, "golden-history"
    ),
    path("events", views.EventFeedView.as_view(), name="events"),
    path("events/schemas", views.EventSchemasView.as_view(), name="event-schemas"),
    path("webhooks/subscriptions", views.WebhookSubscriptionsView.as_view(), name="webhooks"),
    path(
        "webhooks/subscriptions/<int:pk>",
        views.WebhookSubscriptionView.as_view(),
        name="webhook",
    ),
    path(
        "webhooks/subscriptions/<int:pk>/deliveries",
        views.WebhookDeliveriesView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/subscriptions/<int:pk>/replay",
        views.WebhookReplayView.as_view(),
        name="webhook-replay",
    ),
    path("mappings", views.SourceMappingsView.as_view(), name="mappings"),
    path("mappings/preview", views.MappingPreviewView.as_view(), name="mapping-preview"),
    path("mappings/<int:pk>", views.SourceMappingView.as_view(), name="mapping"),
    path("sources/<str:system>/<str:entity>/<path:rest>", unknown_entity),
    path("match/<str:entity>", unknown_entity),
    path("golden/<str:entity>", unknown_entity),
    path("golden/<str:entity>/<path:rest>", unknown_entity),
]
