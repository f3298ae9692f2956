"""Simulator routes: the page under /simulator/ and the REST API under /api/v1/simulations."""

from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("simulator.api_urls")),
]
