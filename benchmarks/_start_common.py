"""What the server-start contenders share: the address, the settings every server runs with,
and the helpers that time a first connection."""

from __future__ import annotations

import itertools
import os
import pwd
import socket
from pathlib import Path

import psycopg

HOST = "127.0.0.1"
USER = "postgres"
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "32MB",
}
SERVER_OPTIONS = " ".join(f"-c {key}={value}" for key, value in FAST_SETTINGS.items())
INITDB_OPTIONS = ("-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C", "-N", "--no-instructions")
MEASURES = ("cold", "warm", "database")
#: Unique directory and database names across contenders.
names = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def first_connection(port: int, dbname: str = "postgres") -> None:
    with psycopg.connect(host=HOST, port=port, user=USER, dbname=dbname, autocommit=True) as conn:
        conn.execute("SELECT 1")


def server_account() -> pwd.struct_passwd | None:
    """The account the servers run as: postgres when we are root (PostgreSQL refuses root)."""
    return pwd.getpwnam(USER) if os.geteuid() == 0 else None


def owned_dir(path: Path, account: pwd.struct_passwd | None) -> Path:
    path.mkdir(mode=0o700)
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)
    return path
