"""URL routes: pages, the REST API under /api/v1/, OTLP ingest, health and metrics."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from thinkmeter import health, metrics, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("", include("ingest.urls")),
    path("", include("dashboards.urls")),
    path("", include("alerts.urls")),
    path("", include("simulator.urls")),
]

# Paths no route matches: JSON under /api/ and /v1/, the HTML page elsewhere.
handler404 = "thinkmeter.views.not_found"
