"""The Django app ``django_pg_real_pool``: system checks, the ``pgpool`` command, warnings
and metrics. The engines work without it."""

from __future__ import annotations

from django.apps import AppConfig


class DjangoPgRealPoolConfig(AppConfig):
    name = "django_pg_real_pool"
    verbose_name = "django-pg-real-pool"

    def ready(self) -> None:
        from . import checks, conf, observe

        checks.register()
        conf.connect_signals()
        observe.install()
