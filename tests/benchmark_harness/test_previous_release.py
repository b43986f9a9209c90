"""previous_release.py: the 1.1.0 venv's pins and when an existing venv is reused
(database-free; nothing is installed: creating the venv needs PyPI and ~15 s, so the suite
checks the decisions, and python -m benchmarks does the install)."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import pytest

from benchmarks import previous_release
from benchmarks.previous_release import PINNED, RELEASE, matches, pins, venv_python

VERSIONS = {
    "Django": "6.1.3",
    "psycopg": "3.3.9",
    "psycopg-binary": "3.3.9",
    "psycopg-pool": "3.3.3",
    "django-db-connection-pool": "1.2.6",
    "SQLAlchemy": "2.1.9",
}


def fake_version(name: str) -> str:
    if name not in VERSIONS:
        raise metadata.PackageNotFoundError(name)
    return VERSIONS[name]


def test_pins_are_the_running_versions_then_the_release() -> None:
    assert pins(fake_version) == [
        "Django==6.1.3",
        "psycopg==3.3.9",
        "psycopg-binary==3.3.9",
        "psycopg-pool==3.3.3",
        "django-db-connection-pool==1.2.6",
        "SQLAlchemy==2.1.9",
        "django-pg-real-pool==1.1.0",
    ]


def test_every_pinned_distribution_is_asked_for() -> None:
    asked: list[str] = []

    def version(name: str) -> str:
        asked.append(name)
        return "1.0"

    pins(version)
    assert asked == list(PINNED)


def test_pins_of_this_interpreter_name_what_is_installed() -> None:
    found = pins()
    assert found[-1] == RELEASE
    assert f"Django=={metadata.version('Django')}" in found


def test_a_missing_distribution_says_how_to_install_it() -> None:
    def version(name: str) -> str:
        if name == "SQLAlchemy":
            raise metadata.PackageNotFoundError(name)
        return "1.0"

    with pytest.raises(RuntimeError, match=r"SQLAlchemy is not installed here.*\[bench\]"):
        pins(version)


def fake_venv(root: Path, requirements: list[str], *, python: str = sys.version) -> None:
    venv_python(root).parent.mkdir(parents=True)
    venv_python(root).touch()
    marker = {"python": python, "requirements": requirements}
    (root / "bench-pins.json").write_text(json.dumps(marker))


def test_a_venv_with_the_same_pins_is_reused(tmp_path: Path) -> None:
    fake_venv(tmp_path, pins(fake_version))
    assert matches(tmp_path, pins(fake_version))


def test_a_venv_with_other_pins_is_not(tmp_path: Path) -> None:
    fake_venv(tmp_path, pins(fake_version))
    VERSIONS_NEWER = {**VERSIONS, "Django": "6.1.4"}
    assert not matches(tmp_path, pins(VERSIONS_NEWER.__getitem__))


def test_a_venv_made_by_another_python_is_not(tmp_path: Path) -> None:
    fake_venv(tmp_path, pins(fake_version), python="3.11.0")
    assert not matches(tmp_path, pins(fake_version))


def test_an_interrupted_install_has_no_marker_and_is_redone(tmp_path: Path) -> None:
    venv_python(tmp_path).parent.mkdir(parents=True)
    venv_python(tmp_path).touch()
    assert not matches(tmp_path, pins(fake_version))


def test_a_damaged_marker_is_not_a_match(tmp_path: Path) -> None:
    fake_venv(tmp_path, pins(fake_version))
    (tmp_path / "bench-pins.json").write_text("{not json")
    assert not matches(tmp_path, pins(fake_version))


def test_ensure_venv_reuses_a_matching_venv_without_running_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_venv(tmp_path, pins())

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"ran {args}")

    monkeypatch.setattr(previous_release.subprocess, "run", refuse)
    assert previous_release.ensure_venv(tmp_path, say=refuse) == venv_python(tmp_path)
