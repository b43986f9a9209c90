"""Loads an ENGINE with some modules made unimportable; prints the error it raises.

Usage: blocked_import.py ENGINE MODULE[,MODULE...] [psycopg_pool_version]
"""

from __future__ import annotations

import os
import sys

engine, blocked = sys.argv[1], sys.argv[2]
for module in filter(None, blocked.split(",")):
    sys.modules[module] = None  # type: ignore[assignment]  # import raises ImportError
if len(sys.argv) > 3:
    import psycopg_pool

    psycopg_pool.__version__ = sys.argv[3]

import django  # noqa: E402
from django.conf import settings  # noqa: E402

settings.configure(
    DATABASES={
        "default": {
            "ENGINE": engine,
            "NAME": os.environ.get("PGRP_DATABASE", "x"),
            "OPTIONS": {"pool": True} if engine == "django_pg_real_pool" else {},
        }
    },
    INSTALLED_APPS=[],
)
django.setup()
from django.db import connections  # noqa: E402

try:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
except Exception as exc:
    print(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
else:
    print("no error")
