"""Routes of the analytics REST API, mounted under /api/v1/."""

from django.urls import path

from dashboards import api

urlpatterns = [
    path("usage", api.UsageView.as_view(), name="api-usage"),
    path("traces", api.TraceListView.as_view(), name="api-traces"),
    path("traces/<str:trace_id>", api.TraceDetailView.as_view(), name="api-trace-detail"),
    path("budgets", api.BudgetsView.as_view(), name="api-budgets"),
]
