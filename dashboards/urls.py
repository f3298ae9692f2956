"""Dashboard routes: the pages, plotly.js served from the installed package, and the REST API."""

from django.urls import include, path, re_path

from dashboards import views

urlpatterns = [
    path("api/v1/", include("dashboards.api_urls")),
    path("finance/", views.finance, name="finance"),
    path("finance/report/", views.finance_report, name="finance-report"),
    path("engineering/", views.engineering, name="engineering"),
    path("traces/", views.traces, name="traces"),
    path("traces/<str:trace_id>/", views.trace_detail, name="trace-detail"),
    path("prices/", views.prices, name="prices"),
    re_path(r"^assets/plotly-(?P<version>[0-9][0-9A-Za-z.\-]*)\.min\.js$", views.plotly_js, name="plotly-js"),
]
