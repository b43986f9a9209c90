"""Every ```python block of the README and of docs/ runs against the test server."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from django_pg_real_pool import conf, in_force
from helpers import released

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
SERVER_KEYS = ("NAME", "USER", "PASSWORD", "HOST", "PORT")


def blocks(*, tests: bool = False) -> list[Any]:
    """Code blocks; those that define tests (``def test_``) only when ``tests``."""
    found = []
    for page in PAGES:
        for number, match in enumerate(BLOCK.finditer(page.read_text()), start=1):
            code = match.group(1)
            if ("def test_" in code) == tests:
                found.append(pytest.param(code, id=f"{page.name}-{number}"))
    return found


def test_every_page_has_been_read() -> None:
    assert {page.name for page in PAGES} >= {"README.md", "engines.md", "pytest-plugin.md"}
    assert len(blocks()) >= 6
    assert len(blocks(tests=True)) >= 6


def test_plugin_page_examples_pass_as_tests(pytester: pytest.Pytester) -> None:
    """The plugin page's examples are test modules: run them as a downstream project would."""
    for number, param in enumerate(blocks(tests=True)):
        pytester.makepyfile(**{f"test_doc_{number}": param.values[0]})
    result = pytester.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider")
    defined = sum(str(param.values[0]).count("def test_") for param in blocks(tests=True))
    result.assert_outcomes(passed=defined + 1)  # the saturation example runs for two engines


@pytest.mark.parametrize("code", blocks())
def test_block_runs(code: str, make_alias) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(code, "<doc block>", "exec"), namespace)
    if "DJANGO_PG_REAL_POOL" in namespace:  # the package setting is accepted as written
        conf.validate(namespace["DJANGO_PG_REAL_POOL"])
    if "DATABASES" not in namespace:
        return
    # A settings sample: each alias must be accepted and serve a query on the test server.
    for settings in namespace["DATABASES"].values():
        overrides = copy.deepcopy(settings)
        for key in SERVER_KEYS:
            overrides.pop(key, None)
        overrides.setdefault("OPTIONS", {})
        name = make_alias("default", **overrides)
        with connections[name].cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        if in_force.is_pooled(overrides):
            assert released(name)
