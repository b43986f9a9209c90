"""``path("health/", include("django_pg_real_pool.urls"))``: ``live/``, ``ready/``,
``metrics/``."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "django_pg_real_pool"

urlpatterns = [
    path("live/", views.live, name="live"),
    path("ready/", views.ready, name="ready"),
    path("metrics/", views.metrics, name="metrics"),
]
