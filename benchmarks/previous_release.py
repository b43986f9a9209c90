"""The virtual environment of django-pg-real-pool 1.1.0, the release on PyPI.

It has our import name, so it runs in a venv of its own under ``.bench/``, with exactly the
versions of Django, psycopg, psycopg_pool, django-db-connection-pool and SQLAlchemy that run
the benchmark (so that only the package differs), and is reused while those pins match.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

__all__ = ["PINNED", "RELEASE", "ensure_venv", "pins", "venv_python"]

RELEASE = "django-pg-real-pool==1.1.0"
#: Distributions pinned to the running interpreter's versions.
PINNED = (
    "Django",
    "psycopg",
    "psycopg-binary",
    "psycopg-pool",
    "django-db-connection-pool",
    "SQLAlchemy",
)
#: 1.1.0 requires Django 5.1+ (its first engine is Django's native pool).
MINIMUM_DJANGO = (5, 1)
_MARKER = "bench-pins.json"


def pins(version: Callable[[str], str] = metadata.version) -> list[str]:
    """The requirements of the 1.1.0 venv: the running versions, then 1.1.0 itself."""
    found = []
    for name in PINNED:
        try:
            found.append(f"{name}=={version(name)}")
        except metadata.PackageNotFoundError:
            raise RuntimeError(
                f"{name} is not installed here, so the 1.1.0 venv cannot match this one: "
                "pip install -e '.[bench]'"
            ) from None
    return [*found, RELEASE]


def venv_python(root: Path) -> Path:
    return root / "bin" / "python"


def _wanted(requirements: list[str]) -> dict[str, object]:
    return {"python": sys.version, "requirements": requirements}


def matches(root: Path, requirements: list[str]) -> bool:
    """Whether ``root`` is a complete venv made for these pins by this Python."""
    marker = root / _MARKER
    if not marker.is_file() or not venv_python(root).exists():
        return False
    try:
        return bool(json.loads(marker.read_text()) == _wanted(requirements))
    except ValueError:
        return False


def ensure_venv(root: Path, *, say: Callable[[str], None] = print) -> Path:
    """The python of a venv at ``root`` holding :func:`pins`; (re)created unless it matches.

    The marker is written last, so an interrupted install is redone next time.
    """
    requirements = pins()
    if matches(root, requirements):
        return venv_python(root)
    if root.exists():
        say(f"the 1.1.0 venv in {root} has other pins; recreating it")
        shutil.rmtree(root)
    say(f"creating the 1.1.0 venv in {root}: {' '.join(requirements)}")
    root.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    result = subprocess.run(
        [
            str(venv_python(root)),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"pip could not install the 1.1.0 venv in {root} (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    (root / _MARKER).write_text(json.dumps(_wanted(requirements), indent=1) + "\n")
    return venv_python(root)
