"""Routes of the alert API, mounted under ``/api/v1/``."""

from rest_framework.routers import SimpleRouter

from alerts import api

router = SimpleRouter(trailing_slash=False)
router.register("alert-rules", api.AlertRuleViewSet, basename="api-alert-rule")
router.register("channels", api.ChannelViewSet, basename="api-channel")
router.register("alerts", api.AlertEventViewSet, basename="api-alert")

urlpatterns = router.urls
