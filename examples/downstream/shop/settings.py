"""A downstream project's settings: its own database, a pooled alias and a readiness alias.

HOST and PORT say where production runs; under pytest, django-pg-real-pool's plugin points
every PostgreSQL alias at the test server and pytest-django creates test_shop there.
"""

DATABASES = {
    "default": {
        "ENGINE": "django_pg_real_pool",
        "NAME": "shop",
        "HOST": "db.shop.internal",
        "OPTIONS": {"pool": {"min_size": 2, "max_size": 4, "timeout": 10}},
    },
    "readiness": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "HOST": "db.shop.internal",
        "TEST": {"MIRROR": "default"},
    },
}
INSTALLED_APPS = ["shop"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SECRET_KEY = "only-for-tests"
