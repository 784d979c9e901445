"""Routes of alerts and notifications, mounted under /api/v1/dr/ by drplan/urls.py."""

from django.urls import re_path

from analytics.notifications.api import views
from core.api.routers import ApiRouter

router = ApiRouter()
router.register("rto-rpo/alerts", views.AlertRuleViewSet, basename="alert-rule")
router.register("notifications/channels", views.ChannelViewSet, basename="notification-channel")
router.register("notifications/subscriptions", views.SubscriptionViewSet, basename="notification-subscription")
router.register("notifications/deliveries", views.DeliveryViewSet, basename="notification-delivery")

urlpatterns = [
    re_path(r"^rto-rpo/alert/?$", views.AlertRuleViewSet.as_view({"post": "create"}), name="alert-rule-create"),
]
