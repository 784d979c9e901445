from django.urls import path

from analytics.web import views, whatif

urlpatterns = [
    path("plans/", views.plan_list, name="plan-list"),
    path("plans/<str:plan_id>/", views.plan_page, name="plan-page"),
    path("what-if/", whatif.what_if, name="what-if"),
]
