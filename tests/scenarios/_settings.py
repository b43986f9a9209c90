"""Django settings for scenario scripts, from the PGRP_* variables the tests pass."""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings


def databases(pool_size: int) -> dict[str, dict[str, Any]]:
    common = {
        "NAME": os.environ["PGRP_DATABASE"],
        "USER": os.environ["PGRP_USER"],
        "HOST": os.environ["PGRP_HOST"],
        "PORT": os.environ["PGRP_PORT"],
    }
    psycopg_pool = {"pool": {"min_size": pool_size, "max_size": pool_size, "timeout": 10}}
    queue_pool = {"POOL_SIZE": pool_size, "MAX_OVERFLOW": 0, "TIMEOUT": 10}
    dbs = {
        "default": {**common, "ENGINE": "django.db.backends.postgresql"},
        "real_pool": {**common, "ENGINE": "django_pg_real_pool", "OPTIONS": psycopg_pool},
        "real_pool_dj": {
            **common,
            "ENGINE": "django_pg_real_pool.dj_db_conn_pool",
            "POOL_OPTIONS": queue_pool,
        },
        "stock_dj_db_conn_pool": {
            **common,
            "ENGINE": "dj_db_conn_pool.backends.postgresql",
            "POOL_OPTIONS": queue_pool,
        },
    }
    if django.VERSION >= (5, 1):
        dbs["stock_django"] = {
            **common,
            "ENGINE": "django.db.backends.postgresql",
            "OPTIONS": psycopg_pool,
        }
    return dbs


def setup(pool_size: int = 1) -> None:
    settings.configure(DATABASES=databases(pool_size), USE_TZ=True, INSTALLED_APPS=[])
    django.setup()
