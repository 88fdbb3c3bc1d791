from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import HealthView, ReadyView
from config.metrics import metrics_view
from stewardship.views.home import HomeView

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("steward/", include("stewardship.urls")),
    path("admin/", admin.site.urls),
    path("healthz", HealthView.as_view(), name="healthz"),
    path("readyz", ReadyView.as_view(), name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("api.urls")),
    path("api/v1/events/schemas/", RedirectView.as_view(pattern_name="api:event-schemas")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

if settings.KEYSTONE_BENCH_VIEWS:
    from bench.views import bare_xref

    urlpatterns.append(path("bench/bare-xref/<str:system>/<path:source_key>", bare_xref))

handler404 = "config.handlers.handler404"
handler500 = "config.handlers.handler500"
