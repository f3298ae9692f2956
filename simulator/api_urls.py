"""Routes of the simulations API, mounted under ``/api/v1/``."""

from django.urls import path

from simulator import api

urlpatterns = [
    path("simulations", api.SimulationListView.as_view(), name="api-simulations"),
    path("simulations/<int:pk>", api.SimulationDetailView.as_view(), name="api-simulation-detail"),
]
