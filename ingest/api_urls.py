"""Routes of the pricing, scores and classification-rule API, mounted under ``/api/v1/``."""

from django.urls import path

from ingest import api

urlpatterns = [
    path("prices", api.PricesView.as_view(), name="api-prices"),
    path("prices/unpriced", api.UnpricedView.as_view(), name="api-prices-unpriced"),
    path("prices/<int:pk>", api.PriceDetailView.as_view(), name="api-price-detail"),
    path("scores", api.ScoresView.as_view(), name="api-scores"),
    path("classification-rules", api.ClassificationRulesView.as_view(), name="api-classification-rules"),
    path("classification-rules/<int:pk>", api.ClassificationRuleDetailView.as_view(),
         name="api-classification-rule-detail"),
]
