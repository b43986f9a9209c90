"""``manage.py pgpool --watch`` until interrupted: prints its frames, exits with the command's
status. Usage: pgpool_watch.py"""

from __future__ import annotations

import sys

import django
from _settings import databases
from django.conf import settings

settings.configure(
    DATABASES=databases(pool_size=1), USE_TZ=True, INSTALLED_APPS=["django_pg_real_pool"]
)
django.setup()

from django.core.management import call_command  # noqa: E402

call_command("pgpool", "real_pool", "--watch", "--interval", "0.2", stdout=sys.stdout)
print("stopped")
