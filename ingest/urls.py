"""Ingest routes: the OTLP/HTTP receiver and the pricing and scores API."""

from django.urls import include, path

from ingest import otlp_http

urlpatterns = [
    path("v1/traces", otlp_http.export_traces, name="otlp-traces"),
    path("api/v1/", include("ingest.api_urls")),
]
