"""Alert routes: the rules and history pages under /alerts/ and the REST API under /api/v1/."""

from django.urls import include, path

from alerts import views

urlpatterns = [
    path("alerts/", views.rules_page, name="alerts-rules"),
    path("alerts/rules/<int:pk>/", views.rule_edit, name="alerts-rule-edit"),
    path("alerts/rules/<int:pk>/delete/", views.rule_delete, name="alerts-rule-delete"),
    path("alerts/channels/<int:pk>/test/", views.channel_test, name="alerts-channel-test"),
    path("alerts/channels/<int:pk>/delete/", views.channel_delete, name="alerts-channel-delete"),
    path("alerts/history/", views.history_page, name="alerts-history"),
    path("alerts/history/<int:pk>/<str:action>/", views.event_action, name="alerts-event-action"),
    path("api/v1/", include("alerts.api_urls")),
]
