"""The expected-failures file: every test of Django's suite expected to fail, per engine and
Django version (``"X.Y"``), each with the reason.

    [real_pool."4.2"]
    "transactions.tests.AtomicErrorsTests.test_x" = "defect: why it fails, what fixes it"
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib
    except ImportError as exc:
        raise ImportError(
            "reading expected_failures.toml on Python 3.10 needs tomli: pip install tomli"
        ) from exc

DEFAULT_PATH = Path(__file__).with_name("expected_failures.toml")

_VERSION = re.compile(r"^\d+\.\d+$")
#: A dotted test id, or what unittest reports for a failed class or module fixture:
#: ``setUpClass (basic.tests.ModelTest)``.
_TEST_ID = re.compile(r"^(?:[A-Za-z_][\w]*\.)+[A-Za-z_]\w*$|^\w+ \((?:[A-Za-z_][\w]*\.)*\w+\)$")


class ExpectedFailuresError(ValueError):
    """The expected-failures file cannot be used as it is."""


@dataclass(frozen=True)
class ExpectedFailures:
    """The parsed file: ``(engine, "X.Y") -> {test id: reason}``."""

    path: Path
    entries: Mapping[tuple[str, str], Mapping[str, str]]

    def for_run(self, engine: str, django_version: str) -> dict[str, str]:
        """The tests expected to fail for ``engine`` on Django ``django_version`` (X.Y[.Z])."""
        series = ".".join(django_version.split(".")[:2])
        return dict(self.entries.get((engine, series), {}))


def load(path: Path, *, engines: frozenset[str]) -> ExpectedFailures:
    """Read and check ``path``; raise ExpectedFailuresError naming the entry and the fix."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExpectedFailuresError(f"cannot read the expected-failures file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExpectedFailuresError(f"{path} is not valid TOML: {exc}") from None
    return parse(data, path=path, engines=engines)


def parse(data: Mapping[str, Any], *, path: Path, engines: frozenset[str]) -> ExpectedFailures:
    """Check the TOML document ``data`` (see the module docstring for its shape)."""
    known = ", ".join(sorted(engines))
    entries: dict[tuple[str, str], dict[str, str]] = {}
    for engine, versions in data.items():
        if engine not in engines:
            raise ExpectedFailuresError(
                f"{path}: unknown engine [{engine}]; the engines are {known}."
            )
        if not isinstance(versions, Mapping):
            raise ExpectedFailuresError(
                f'{path}: [{engine}] must hold tables such as [{engine}."6.1"], not {versions!r}.'
            )
        for version, tests in versions.items():
            where = f'[{engine}."{version}"]'
            if not _VERSION.match(version):
                raise ExpectedFailuresError(
                    f"{path}: {where} is not a Django version; use the series, such as "
                    f'[{engine}."5.2"] (quoted, without the patch number).'
                )
            if not isinstance(tests, Mapping):
                raise ExpectedFailuresError(
                    f"{path}: {where} must be a table of test id = reason, not {tests!r}."
                )
            for test_id, reason in tests.items():
                if not _TEST_ID.match(test_id):
                    raise ExpectedFailuresError(
                        f"{path}: {where} has {test_id!r}, which is not a test id; write it "
                        'as Django prints it, e.g. "basic.tests.ModelTest.test_save".'
                    )
                if not isinstance(reason, str) or not reason.strip():
                    raise ExpectedFailuresError(
                        f"{path}: {where} {test_id!r} needs its reason as a non-empty string, "
                        f"not {reason!r}: say why it fails and what would fix it."
                    )
            entries[(engine, version)] = dict(tests)
    return ExpectedFailures(path=path, entries=entries)
