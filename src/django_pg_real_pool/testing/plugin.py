"""The pytest plugin (entry point ``pytest11``): options, markers and the xdist hand-off.

Importing it imports no Django and starts nothing; the server starts when a test first asks
for ``pg_server`` (directly or through another fixture).
"""

from __future__ import annotations

from typing import Any

import pytest

from . import config as settings
from . import leaks
from .run import WORKER_OWNER, WORKER_RUN, Run

LEAK_MARKER = "pool_leak_check"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("django-pg-real-pool", "PostgreSQL test servers and pool fixtures")
    for name, text in settings.SETTINGS.items():
        group.addoption(
            settings.option(name),
            dest=name,
            default=None,
            help=f"{text} (ini: {name}, environment: {settings.environment_variable(name)})",
        )
        parser.addini(name, text, type="string", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{LEAK_MARKER}: fail the test if it leaves a pooled connection checked out or a pool "
        "open (django-pg-real-pool)",
    )
    try:
        settings.read(config)
    except settings.PluginUsageError as exc:
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
        run = Run.of(self.config)
        node.workerinput[WORKER_RUN] = run.id
        node.workerinput[WORKER_OWNER] = run.owner_pid


@pytest.fixture(autouse=True)
def _pool_leak_check_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker(LEAK_MARKER) is not None:
        request.getfixturevalue("no_pool_leaks")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    leaks.start(item)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    result = yield
    leaks.check(item)  # after every fixture's teardown, whatever their order
    return result


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # the controller (or the single pytest process) owns the server
    run_id = Run.started(config)
    if run_id is not None:
        from . import shared

        shared.release(run_id)
