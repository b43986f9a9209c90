"""Every use of a private name of Django or SQLAlchemy, in one place.

Each is a named function or constant with the reason it is needed. ``tests/test_internals.py``
fails, naming what is missing or changed, when an installed version no longer has what this
module relies on; run it in the whole matrix before supporting a new release. Of
django-db-connection-pool only its pool container is used (the second engine builds its own
``QueuePool`` and lists it there for code written for django-db-connection-pool).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import textwrap
import time
import tokenize
from collections.abc import Callable
from typing import Any, TypeVar

from django.db.backends.base.base import NO_DB_ALIAS, BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.utils.functional import cached_property

EntryT = TypeVar("EntryT")

#: Django's alias for connections made without a database (``CREATE DATABASE``, ...); the
#: engines give it a plain connection, never a pool.
NO_DATABASE_ALIAS: str = NO_DB_ALIAS

#: Django's private hooks that the engines override, with why, and the public method of
#: Django's that must still call each one for the override to take effect.
OVERRIDDEN_HOOKS: dict[str, tuple[str, str]] = {
    "BaseDatabaseWrapper._close": (
        "close",
        "gives the connection back to the pool instead of closing it",
    ),
    "BaseDatabaseWrapper._set_autocommit": (
        "set_autocommit",
        "sets autocommit on the psycopg connection behind SQLAlchemy's proxy",
    ),
    "BaseDatabaseCreation._clone_test_db": (
        "clone_test_db",
        "closes the pool before a test database is cloned (Django < 5.1 does not)",
    ),
    "BaseDatabaseCreation._destroy_test_db": (
        "destroy_test_db",
        "closes the pool before a test database is dropped (Django < 5.1 does not)",
    ),
}

#: Attributes of ``BaseDatabaseWrapper`` (set in its ``__init__``) that ``connect_from_pool``
#: resets and the release mechanism reads or writes.
CONNECTION_STATE_ATTRIBUTES: tuple[str, ...] = (
    "in_atomic_block",
    "savepoint_ids",
    "atomic_blocks",
    "needs_rollback",
    "health_check_enabled",
    "close_at",
    "closed_in_transaction",
    "errors_occurred",
    "health_check_done",
    "run_on_commit",
    "run_commit_hooks_on_set_autocommit_on",
)

#: ``connect_from_pool`` copies ``BaseDatabaseWrapper.connect()``. Its ``source_fingerprint``,
#: read in the wheels of Django 4.2.30, 5.0.14, 5.1.15, 5.2.19, 6.0.10 and 6.1.3 (identical in
#: all): a Django whose ``connect()`` is not one of these fails ``tests/test_internals.py``.
CONNECT_FINGERPRINTS: dict[tuple[int, int], str] = dict.fromkeys(
    [(4, 2), (5, 0), (5, 1), (5, 2), (6, 0), (6, 1)],
    "ad87ffb5d81d853d",
)


def source_fingerprint(source: str) -> str:
    """A hash of the tokens of ``source``, without comments or layout: the same across
    Python versions and reformatting, different when a name, a value or a statement changes."""
    skipped = {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
    }
    tokens = tokenize.generate_tokens(io.StringIO(textwrap.dedent(source)).readline)
    text = " ".join(token.string for token in tokens if token.type not in skipped)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: What Django's PostgreSQL ``DatabaseWrapper`` does to set up a new connection's session,
#: which the engines skip at checkout and ``session.py`` does once per physical connection.
SESSION_SETUP_METHODS: tuple[str, ...] = (
    "init_connection_state",
    "_configure_connection",
    "_configure_timezone",
    "_configure_role",
    "ensure_timezone",
    "ensure_role",
)

#: ``session_setup_fingerprint()`` as read in the same wheels: review ``session.py`` against
#: a Django whose fingerprint is not here.
SESSION_SETUP_FINGERPRINTS: dict[tuple[int, int], str] = {
    (4, 2): "4ae90cea75f422d4",
    (5, 0): "4ae90cea75f422d4",
    (5, 1): "6aa1fe90ce2a2c41",
    (5, 2): "6aa1fe90ce2a2c41",
    (6, 0): "6aa1fe90ce2a2c41",
    (6, 1): "6aa1fe90ce2a2c41",
}


def session_setup_fingerprint() -> str:
    """``source_fingerprint`` of the ``SESSION_SETUP_METHODS`` the installed Django defines."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    own = vars(DatabaseWrapper)
    sources = [
        textwrap.dedent(inspect.getsource(own[name]))
        for name in SESSION_SETUP_METHODS
        if name in own
    ]
    return source_fingerprint("".join(sources))


def connect_fingerprint() -> str:
    """``source_fingerprint`` of the installed ``BaseDatabaseWrapper.connect()``, with its
    decorators (``inspect`` unwraps ``async_unsafe`` to the source that carries it)."""
    return source_fingerprint(inspect.getsource(BaseDatabaseWrapper.connect))


def connect_from_pool(
    wrapper: BaseDatabaseWrapper, checkout: Callable[[EntryT], None], entry: EntryT
) -> None:
    """Django's ``BaseDatabaseWrapper.connect()``, the same from 4.2 to 6.1, with its
    ``get_new_connection()`` and ``set_autocommit()`` replaced by ``checkout(entry)`` and without
    the session setup each physical connection got once already (``session.py``).

    The caller decorates its ``connect()`` with Django's ``async_unsafe``, as Django does.
    """
    wrapper.check_settings()
    wrapper.in_atomic_block = False
    wrapper.savepoint_ids = []
    wrapper.atomic_blocks = []
    wrapper.needs_rollback = False
    wrapper.health_check_enabled = wrapper.settings_dict["CONN_HEALTH_CHECKS"]  # type: ignore[attr-defined]
    wrapper.close_at = time.monotonic()  # CONN_MAX_AGE is 0
    wrapper.closed_in_transaction = False
    wrapper.errors_occurred = False
    wrapper.health_check_done = True  # type: ignore[attr-defined]
    checkout(entry)
    # Django's base version only: PostgreSQL's sets time zone and role, done once per
    # physical connection by the pool's configure callback.
    BaseDatabaseWrapper.init_connection_state(wrapper)
    if connection_created.receivers:  # an empty send() still costs a call per checkout
        connection_created.send(sender=wrapper.__class__, connection=wrapper)
    wrapper.run_on_commit = []


def close_connection(wrapper: BaseDatabaseWrapper, *, after: type) -> None:
    """Django's ``_close()`` (the class after ``after`` in the wrapper's MRO): a physical
    close, for what the engine does not pool."""
    super(after, wrapper)._close()  # type: ignore[arg-type]


def clone_test_db(creation: Any, *, after: type, args: tuple[Any, ...]) -> None:
    """Django's ``_clone_test_db()``, after the engine closed the pool."""
    super(after, creation)._clone_test_db(*args)  # type: ignore[arg-type]


def destroy_test_db(creation: Any, *, after: type, args: tuple[Any, ...]) -> None:
    """Django's ``_destroy_test_db()``, after the engine closed the pool."""
    super(after, creation)._destroy_test_db(*args)  # type: ignore[arg-type]


def run_deferred_commit_hooks(wrapper: BaseDatabaseWrapper) -> None:
    """What Django's ``set_autocommit(True)`` does for the ``on_commit`` hooks of a manual
    transaction, for a wrapper whose connection is already back in the pool."""
    if wrapper.run_commit_hooks_on_set_autocommit_on:
        wrapper.run_and_clear_commit_hooks()
        wrapper.run_commit_hooks_on_set_autocommit_on = False


def mark_closed_in_transaction(wrapper: BaseDatabaseWrapper) -> None:
    """After ``fork()``, an atomic block whose connection stayed with the parent must fail
    the way Django fails a block whose connection was closed."""
    wrapper.closed_in_transaction = True
    wrapper.needs_rollback = True


def django_uses_psycopg3() -> bool:
    """Whether Django's PostgreSQL backend would load psycopg 3 (not psycopg2)."""
    try:
        from django.db.backends.postgresql.psycopg_any import is_psycopg3
    except ImportError:  # neither psycopg nor psycopg2
        return False
    return bool(is_psycopg3)


def expose_driver_info(fairy: Any) -> Any:
    """Django reads ``connection.info`` (server version, parameter status); SQLAlchemy's
    connection proxy has an ``info`` dict of its own, so it is replaced by psycopg's, as
    django-db-connection-pool does."""
    fairy.info = fairy.dbapi_connection.info
    return fairy


def mark_response_logged(response: Any) -> None:
    """Set the private flag of Django's ``log_response()`` (``_has_been_logged``, Django 3.2+)
    so that ``django.request`` does not log a response again: the readiness probe logs its
    own reason, and a probe every few seconds must not mail the admins."""
    response._has_been_logged = True


def list_in_dj_db_conn_pool(alias: str, pool: Any) -> None:
    """Put ``pool`` in ``dj_db_conn_pool.core.pool_container`` under ``alias``, where code and
    tools written for django-db-connection-pool look pools up (``pool_container.get(alias)``);
    the registry (``pools.py``) stays the owner."""
    from dj_db_conn_pool.core import pool_container

    with pool_container.lock:
        pool_container.put(alias, pool)


def unlist_from_dj_db_conn_pool(alias: str, pool: Any) -> None:
    """Take ``pool`` out of django-db-connection-pool's container, if it is still the one
    listed under ``alias`` (a newer pool of the alias may have replaced it)."""
    from dj_db_conn_pool.core import pool_container

    with pool_container.lock:
        if pool_container.has(alias) and pool_container[alias] is pool:
            del pool_container[alias]


def forget_in_dj_db_conn_pool(aliases: Any) -> None:
    """In a forked child: take the parent's pools out of django-db-connection-pool's container,
    without its lock (a thread of the parent may have held it at fork time)."""
    from dj_db_conn_pool.core import pool_container

    for alias in aliases:
        pool_container.pop(alias, None)


def add_django_test_skips(
    features_class: type, by_design: Callable[[Any], dict[str, set[str]]]
) -> None:
    """Make ``features_class.django_test_skips`` Django's own skips plus ``by_design``'s.

    Django's test suite (``tests/runtests.py``) reads this ``cached_property`` of its
    ``DatabaseFeatures`` and its ``TestMarkTests`` assigns to it, so it must stay a
    ``cached_property``, which a typed subclass cannot declare over Django's attribute.
    """

    def django_test_skips(self: Any) -> dict[str, set[str]]:
        inherited = super(features_class, self).django_test_skips  # type: ignore[arg-type]
        skips = {reason: set(tests) for reason, tests in inherited.items()}
        for reason, tests in by_design(self).items():
            skips.setdefault(reason, set()).update(tests)
        return skips

    skips_property = cached_property(django_test_skips)
    skips_property.__set_name__(features_class, "django_test_skips")
    setattr(features_class, "django_test_skips", skips_property)  # noqa: B010
