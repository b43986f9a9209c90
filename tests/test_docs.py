"""Every ```python block of the README and of docs/ runs against the test server.

A settings sample (a block that defines ``DATABASES``) is run by giving each of its aliases a
query on the test server. Every other fenced block must say its language, so that no Python
hides in an untested block.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from django_pg_real_pool import conf, engines
from helpers import held, released

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
FENCE = re.compile(r"^```(\S*)\n.*?^```", re.DOTALL | re.MULTILINE)
#: Languages of blocks that are not run: shell commands, error output, diagrams, Kubernetes
#: manifests. TOML blocks are parsed (test_toml_blocks_parse).
UNTESTED_LANGUAGES = {"sh", "text", "mermaid", "yaml", "toml"}
SERVER_KEYS = ("NAME", "USER", "PASSWORD", "HOST", "PORT")
OUR_ENGINES = set(engines.ENGINES)


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
    assert {page.name for page in PAGES} >= {
        "README.md",
        "configuration.md",
        "release.md",
        "coming-from-1.1.md",
        "pytest-plugin.md",
    }
    assert len(blocks()) >= 20
    assert len(blocks(tests=True)) >= 6


def test_every_block_says_its_language() -> None:
    """A block without a language, or in one that is not run, could hide untested Python."""
    wrong = [
        f"{page.relative_to(ROOT)}: ```{language}"
        for page in PAGES
        for language in FENCE.findall(page.read_text())
        if language not in UNTESTED_LANGUAGES | {"python"}
    ]
    assert not wrong, f"use ```python (run by this module) or one of {UNTESTED_LANGUAGES}"


def test_toml_blocks_parse() -> None:
    """A TOML sample (the expected-failure list's format) is at least valid TOML."""
    from django_suite.expected import tomllib

    samples = [
        match.group(1)
        for page in PAGES
        for match in re.finditer(r"^```toml\n(.*?)^```", page.read_text(), re.DOTALL | re.MULTILINE)
    ]
    assert samples
    for sample in samples:
        assert isinstance(tomllib.loads(sample), dict)


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
        if settings["ENGINE"] in OUR_ENGINES and overrides["OPTIONS"].get("pool", True):
            assert released(name)
        else:
            # Django's stock backend, or ours with OPTIONS["pool"] False: held until close().
            assert connections[name].connection is not None
    if "readiness" in namespace:
        _check_readiness_view(namespace["readiness"], namespace["DATABASES"]["readiness"])


def _check_readiness_view(view: Any, settings: dict[str, Any]) -> None:
    """configuration.md's probe answers 200 on its own alias, and leaves nothing open."""
    overrides = copy.deepcopy(settings)
    for key in SERVER_KEYS:
        overrides.pop(key, None)
    plain = copy.deepcopy(connections.settings["plain"])
    connections.settings["readiness"] = {**plain, **overrides}
    try:
        response = view(None)
        assert response.status_code == 200
        assert response.content == b"ok"
        assert connections["readiness"].connection is None
    finally:
        connections["readiness"].close()
        del connections["readiness"]
        del connections.settings["readiness"]


def test_release_page_on_raw_queries(alias: str) -> None:
    """release.md: a fully read raw() gives the connection back; a partly read one holds it."""
    from app.models import Item

    for number in range(3):
        Item.objects.using(alias).create(name=str(number))
    assert len(list(Item.objects.using(alias).raw("SELECT id FROM app_item"))) == 3
    assert released(alias)
    rows = Item.objects.using(alias).raw("SELECT id FROM app_item").iterator()
    next(rows)
    assert held(alias)
    assert len(list(rows)) == 2
    assert released(alias)
