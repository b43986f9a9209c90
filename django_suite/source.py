"""The test suite of the installed Django version, from its source distribution.

Downloaded with pip once per version into ``$XDG_CACHE_HOME/django-pg-real-pool/django-suite``
(else ``~/.cache/...``); only ``tests/`` is kept. Unpacked in a temporary directory and renamed
into place under a file lock, so two runs racing never see half a tree.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

#: runtests.py is the last file checked; its presence says the tree is complete.
_MARKER = "runtests.py"


class SuiteSourceError(RuntimeError):
    """Django's test suite could not be obtained."""


def installed_django_version() -> str:
    """The version of the Django this interpreter imports, e.g. ``'6.1.3'``."""
    try:
        return metadata.version("Django")
    except metadata.PackageNotFoundError:
        raise SuiteSourceError(
            f"Django is not installed for {sys.executable}; install the version to test, "
            "e.g. pip install 'Django>=5.2,<5.3'."
        ) from None


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/django-pg-real-pool/django-suite``, else under ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "django-pg-real-pool", "django-suite")


def suite_tests_dir(version: str, *, cache_dir: Path | None = None) -> Path:
    """The ``tests/`` directory of Django ``version``, downloading it on first use."""
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    target = cache / f"Django-{version}" / "tests"
    if (target / _MARKER).is_file():
        return target
    try:
        return _fetch(version, cache, target)
    except OSError as exc:
        raise SuiteSourceError(
            f"cannot keep Django's test suite in {cache}: {exc}. Choose a writable directory "
            "with --cache-dir or $XDG_CACHE_HOME."
        ) from exc


def _fetch(version: str, cache: Path, target: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / f"Django-{version}.lock"):
        if (target / _MARKER).is_file():  # another run finished it while we waited
            return target
        with tempfile.TemporaryDirectory(prefix=f".Django-{version}-", dir=cache) as work:
            archive = _download(version, Path(work))
            unpacked = _unpack_tests(archive, Path(work) / "unpacked")
            if target.parent.exists():  # a leftover without runtests.py: incomplete
                shutil.rmtree(target.parent)
            target.parent.mkdir()
            unpacked.rename(target)
    return target


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(version: str, into: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--dest",
        str(into),
        f"Django=={version}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    archives = sorted(into.glob("*.tar.gz"))
    if done.returncode != 0 or not archives:
        raise SuiteSourceError(
            f"could not download the source distribution of Django {version} "
            f"({' '.join(command)} exited with {done.returncode}):\n"
            f"{done.stderr.strip() or done.stdout.strip()}\n"
            "Check that pip can reach the package index (PIP_INDEX_URL), or put the unpacked "
            f"tests/ of Django {version} in the cache directory yourself."
        )
    return archives[0]


def _unpack_tests(archive: Path, into: Path) -> Path:
    """Extract ``<top>/tests/`` of the sdist into ``into``; return the ``tests`` directory."""
    into.mkdir()
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if _is_tests_member(m.name)]
        if not any(m.name.endswith(f"/tests/{_MARKER}") for m in members):
            raise SuiteSourceError(f"{archive.name} has no tests/{_MARKER}")
        if sys.version_info >= (3, 12):
            tar.extractall(into, members=members, filter="data")
        else:  # the names were checked by _is_tests_member
            tar.extractall(into, members=members)
    (top,) = [path for path in into.iterdir() if path.is_dir()]
    return top / "tests"


def _is_tests_member(name: str) -> bool:
    parts = name.split("/")
    return (
        len(parts) >= 2 and parts[1] == "tests" and ".." not in parts and not name.startswith("/")
    )
