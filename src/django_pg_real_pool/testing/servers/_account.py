"""The unprivileged account PostgreSQL runs as when we are root, and what it can reach."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from .errors import ServerStartError

SERVER_ACCOUNTS = ("postgres", "nobody")


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


def server_account() -> Account | None:
    """The unprivileged account the server must run as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_ACCOUNTS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return Account(name, entry.pw_uid, entry.pw_gid)
    raise ServerStartError(
        "PostgreSQL refuses to run as root and there is no 'postgres' or 'nobody' user "
        "to run it as; create one (useradd --system postgres) or run as a normal user"
    )


def _allows(st: os.stat_result, account: Account, bits: int) -> bool:
    """Whether the owner/group/other ``bits`` (given as the "other" triplet) let ``account`` in."""
    if st.st_uid == account.uid:
        return bool(st.st_mode & (bits << 6))
    if st.st_gid == account.gid:
        return bool(st.st_mode & (bits << 3))
    return bool(st.st_mode & bits)


def first_blocked(path: Path, account: Account) -> Path | None:
    """The first existing component of ``path`` that ``account`` may not enter or execute."""
    for part in [*reversed(path.parents), path]:
        try:
            st = part.stat()
        except FileNotFoundError:
            return None
        if not _allows(st, account, 0o1):
            return part
    return None


def readable_by(path: Path, account: Account) -> bool:
    """Whether ``account`` can reach and read ``path`` (by its mode bits)."""
    try:
        st = path.stat()
    except OSError:
        return False
    return first_blocked(path.parent, account) is None and _allows(st, account, 0o4)


def blocked_message(path: Path, blocked: Path, account: Account) -> str:
    return (
        f"{path} cannot be reached by user {account.name!r}, which PostgreSQL must run as "
        f"because this process is root: {blocked} has mode {blocked.stat().st_mode & 0o7777:o}"
    )
