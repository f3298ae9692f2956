"""Simulator routes: the page under /simulator/ and the REST API under /api/v1/simulations."""

from django.urls import include, path

from simulator import views

urlpatterns = [
    path("simulator/", views.simulator_page, name="simulator"),
    path("simulator/runs/<int:pk>/", views.run_page, name="simulator-run"),
    path("api/v1/", include("simulator.api_urls")),
]
