"""The pytest plugin (entry point ``pytest11``): options, markers and the xdist hand-off.

Importing it imports no Django and starts nothing; the server starts when a test first asks
for ``pg_server`` (directly or through another fixture).
"""

from __future__ import annotations

from typing import Any

import pytest

from .config import SETTINGS, PluginConfig, PluginUsageError, environment_variable, option

LEAK_MARKER = "pool_leak_check"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("django-pg-real-pool", "PostgreSQL test servers and pool fixtures")
    for name, (text, kind) in SETTINGS.items():
        group.addoption(
            option(name),
            dest=name,
            default=None,
            help=f"{text} (ini: {name}, environment: {environment_variable(name)})",
        )
        parser.addini(name, text, type=kind, default="")  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{LEAK_MARKER}: fail the test if it leaves a pooled connection checked out or a pool "
        "open (django-pg-real-pool)",
    )
    try:
        PluginConfig.from_pytest(config)
    except PluginUsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    from . import fixtures

    config.pluginmanager.register(fixtures, "django_pg_real_pool.fixtures")
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_XdistController(config), "django_pg_real_pool.xdist")
    if config.pluginmanager.hasplugin("django"):
        # Registered late so that its django_db_modify_db_settings wins over pytest-django's.
        from . import django_plugin

        config.pluginmanager.register(django_plugin, "django_pg_real_pool.django")


class _XdistController:
    """Tells every worker which run (and which owner process) the shared server belongs to."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        from .fixtures import owner_pid, run_id

        node.workerinput["pg_real_pool_run"] = run_id(self.config)
        node.workerinput["pg_real_pool_owner"] = owner_pid(self.config)


@pytest.fixture(autouse=True)
def _pool_leak_check_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker(LEAK_MARKER) is not None:
        request.getfixturevalue("no_pool_leaks")


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # the controller (or the single pytest process) owns the server
    from .fixtures import RUN_ID

    if RUN_ID in config.stash:
        from . import shared

        shared.release(config.stash[RUN_ID])
