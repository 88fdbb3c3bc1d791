from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("steward/", include("stewardship.urls")),
    path("admin/", admin.site.urls),
]
