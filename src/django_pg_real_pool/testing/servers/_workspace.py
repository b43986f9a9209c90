"""The directories and process a LocalServer owns, placed where the server account can reach
them, and their release."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ._account import Account, first_blocked
from ._process import terminate
from .errors import ServerStartError

logger = logging.getLogger("django_pg_real_pool")

_CLOSE_TIMEOUT = 10.0


@dataclass
class Resources:
    """What a LocalServer must release; shared with its finalizer, so it never refers back."""

    owner_pid: int
    account: Account | None
    proc: subprocess.Popen[bytes] | None = None
    owned: list[Path] = field(default_factory=list)

    def hand_over(self, path: Path) -> None:
        """Give ``path`` to the server account (when we are root)."""
        if self.account is not None:
            os.chown(path, self.account.uid, self.account.gid)

    def make_server_dir(self, path: Path) -> None:
        """Create a directory the server writes to, owned by the server's account."""
        if path.exists():
            return
        path.mkdir(mode=0o700)
        self.owned.append(path)
        self.hand_over(path)

    def make_base_dir(self, requested: Path | None) -> Path:
        """``requested`` (created if missing) if the server account can enter it, else a new
        temporary directory that it can."""
        if requested is not None:
            requested = Path(requested).absolute()
            blocked = self.blocked(requested)
            if blocked is None:
                self._make_dirs(requested)
                return requested
            logger.info(
                "the server account cannot enter %s (mode %o): using a temporary directory "
                "instead of %s",
                blocked,
                blocked.stat().st_mode & 0o7777,
                requested,
            )
        path = Path(tempfile.mkdtemp(prefix="pg-real-pool-", dir=self.temp_parent()))
        self.owned.append(path)
        if self.account is not None:
            path.chmod(0o711)  # ours: the server account only needs to pass through
        return path

    def blocked(self, path: Path) -> Path | None:
        """The first component of ``path`` the server account cannot enter, if any."""
        return None if self.account is None else first_blocked(path, self.account)

    def temp_parent(self) -> str:
        """A temporary directory the server account can enter."""
        candidates = dict.fromkeys([tempfile.gettempdir(), "/tmp", "/var/tmp"])
        for candidate in candidates:
            if os.path.isdir(candidate) and self.blocked(Path(candidate)) is None:
                return candidate
        raise ServerStartError(
            f"none of {', '.join(candidates)} can be entered by the server account; "
            "set TMPDIR to a directory it can enter"
        )

    def _make_dirs(self, path: Path) -> None:
        missing = [p for p in [*reversed(path.parents), path] if not p.exists()]
        for directory in missing:
            directory.mkdir()
            if self.account is not None:
                directory.chmod(0o711)  # ours, so opening it up to the server account is fine
        if missing:
            self.owned.append(missing[0])


def release(resources: Resources) -> None:
    """Stop the server and remove what we created; log failures instead of raising."""
    if os.getpid() != resources.owner_pid:
        return  # a forked child must not stop its parent's server
    proc, resources.proc = resources.proc, None
    if proc is not None:
        try:
            terminate(proc, _CLOSE_TIMEOUT)
        except Exception:
            logger.exception("could not stop PostgreSQL pid %d", proc.pid)
    for path in reversed(resources.owned):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not remove %s: %s", path, exc)
    resources.owned.clear()
