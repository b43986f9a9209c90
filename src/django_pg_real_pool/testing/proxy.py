"""A loopback TCP proxy for tests, to put in front of PostgreSQL and cut or deafen the network.

One thread per proxy moves the bytes over non-blocking sockets, so ``cut()``, ``deafen()`` and
``restore()`` reach every connection at once and return only once they have taken effect.

What it cannot simulate: the proxy's kernel acknowledges every byte a client sends, so a deaf
proxy is not a lost network. TCP keepalives and ``tcp_user_timeout`` do not notice it; only the
client's own timeouts (``connect_timeout``, a read timeout, a pool's checks) do.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from ._relay import CHUNK, READ, ProxyState, Relay

__all__ = ["ProxyState", "TcpProxy"]

logger = logging.getLogger("django_pg_real_pool")

_BACKLOG = 128
_LISTENER = "listener"
_WAKE = "wake"

_P = TypeVar("_P", bound="TcpProxy")


def _loopback(
    host: str, port: int, *, role: str, lowest_port: int
) -> tuple[socket.AddressFamily, str]:
    """The address family and IP of ``host``, which must be a loopback address; never resolves.

    ``localhost`` means 127.0.0.1: a name lookup could leave the machine, and this proxy must not.
    """
    address = "127.0.0.1" if host == "localhost" else host
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(
            f"the {role} host {host!r} is not an IP address; pass a loopback address such as "
            "127.0.0.1 or ::1 (names other than localhost are not resolved)"
        ) from None
    if not ip.is_loopback:
        raise ValueError(
            f"the {role} host {host!r} is not a loopback address: TcpProxy only listens on and "
            "connects to 127.0.0.0/8 and ::1"
        )
    if not lowest_port <= port <= 65535:
        raise ValueError(f"the {role} port {port} is not between {lowest_port} and 65535")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return family, str(ip)


class TcpProxy:
    """Forward TCP connections from ``host:port`` to ``target_host:target_port``, both loopback.

    States: ``forwarding``; ``cut`` (a network partition: open connections are reset, new ones
    are accepted and reset at once); ``deaf`` (a hung server: connections stay open and new ones
    are accepted, but bytes in both directions are dropped, so clients wait for their own
    timeout). ``restore()`` resets every connection that was deaf, because the bytes dropped
    meanwhile leave its protocol stream unusable; connections opened after it forward normally.
    A client that closes while deaf is counted out, and its upstream connection closed, at once.

    If the target refuses a connection, the client's connection is reset. ``close()`` resets every
    connection. Not fork-safe: a forked child must not use its parent's proxy.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self._target_family, target = _loopback(
            target_host, target_port, role="target", lowest_port=1
        )
        self._target = (target, target_port)
        self._family, self.host = _loopback(listen_host, listen_port, role="listen", lowest_port=0)
        self.port = listen_port
        self._state: ProxyState = "forwarding"
        self._relay: Relay | None = None  # made by start()
        self._lock = threading.Lock()  # guards the fields below, shared with the loop thread
        self._commands: list[tuple[Callable[[], None], threading.Event]] = []
        self._running = False
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._count = 0
        self._count_changed = threading.Condition()

    def __repr__(self) -> str:
        return (
            f"<TcpProxy {self.host}:{self.port} -> {self._target[0]}:{self._target[1]}, "
            f"{self._state}, {self._count} connections>"
        )

    @property
    def state(self) -> ProxyState:
        """``"forwarding"``, ``"cut"`` or ``"deaf"``."""
        return self._state

    @property
    def connections(self) -> int:
        """Client connections open through the proxy right now."""
        return self._count

    def start(self) -> None:
        """Listen on ``host:port`` and start forwarding; ``port`` is the bound port afterwards."""
        with self._lock:
            if self._closed:
                raise RuntimeError(
                    f"the proxy on {self.host}:{self.port} is closed; make a new one"
                )
            if self._thread is not None:
                return
            listener = socket.socket(self._family, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((self.host, self.port))
                listener.listen(_BACKLOG)
                listener.setblocking(False)
            except BaseException:
                listener.close()
                raise
            self.port = int(listener.getsockname()[1])
            self._listener = listener
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._selector = selectors.DefaultSelector()
            self._selector.register(listener, READ, _LISTENER)
            self._selector.register(self._wake_r, READ, _WAKE)
            self._relay = Relay(
                self._selector,
                listener,
                target=self._target,
                target_family=self._target_family,
                name=f"{self.host}:{self.port}",
            )
            self._running = True
            self._thread = threading.Thread(
                target=self._run, name=f"TcpProxy {self.host}:{self.port}", daemon=True
            )
            self._thread.start()
        logger.debug("proxy %s:%d -> %s:%d started", self.host, self.port, *self._target)

    def close(self) -> None:
        """Stop listening, reset every connection and join the proxy's thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = self._stopping = True
            thread = self._thread
        self._wake()
        if thread is not None:
            thread.join()
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        logger.debug("proxy %s:%d closed", self.host, self.port)

    def cut(self) -> None:
        """Reset every open connection, and every new one until ``restore()``."""
        self._apply(self._cut)

    def deafen(self) -> None:
        """Drop every byte from now on, both ways, keeping connections open and accepting more."""
        self._apply(self._deafen)

    def restore(self) -> None:
        """Forward new connections again; connections that were deaf are reset."""
        self._apply(self._restore)

    def wait_for_connections(self, n: int, *, timeout: float = 10.0) -> None:
        """Return once exactly ``n`` client connections are open; TimeoutError after ``timeout``."""
        with self._count_changed:
            if not self._count_changed.wait_for(lambda: self._count == n, timeout):
                raise TimeoutError(
                    f"the proxy on {self.host}:{self.port} has {self._count} open connections, "
                    f"not {n}, after {timeout:g}s"
                )

    def __enter__(self: _P) -> _P:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Commands: run by the loop thread between two rounds of I/O, or directly when it is not
    # running (then there is no connection to act on).

    def _apply(self, command: Callable[[], None]) -> None:
        with self._lock:
            if not self._running:
                command()
                return
            done = threading.Event()
            self._commands.append((command, done))
        self._wake()
        done.wait()

    def _cut(self) -> None:
        self._state = "cut"
        if self._relay is not None:
            self._relay.reset_all()

    def _deafen(self) -> None:
        self._state = "deaf"
        if self._relay is not None:
            self._relay.deafen_all()

    def _restore(self) -> None:
        self._state = "forwarding"
        if self._relay is not None:
            self._relay.reset_deaf()

    def _wake(self) -> None:
        if self._wake_w is not None:
            # Full: a wake-up is already pending. Closed: the loop is gone.
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    # The loop thread.

    def _run(self) -> None:
        try:
            while self._serve_once():
                pass
        except Exception:
            logger.exception("proxy %s:%d failed; its connections are reset", self.host, self.port)
        finally:
            self._shut_down()

    def _serve_once(self) -> bool:
        """One round: wait for I/O or a command and handle it; False once asked to stop."""
        assert self._selector is not None
        assert self._relay is not None
        self._relay.watch_all()
        for key, mask in self._selector.select():
            if key.data == _LISTENER:
                self._relay.accept(self._state)
            elif key.data == _WAKE:
                self._drain_wake_ups()
            else:
                self._relay.on_ready(key.data, key.fileobj, mask)
        self._relay.close_finished()
        with self._lock:
            commands, self._commands = self._commands, []
            stopping = self._stopping
        try:
            for command, _ in commands:
                command()
            self._publish_count()
        finally:
            for _, done in commands:
                done.set()
        return not stopping

    def _drain_wake_ups(self) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(OSError):
            self._wake_r.recv(CHUNK)

    def _shut_down(self) -> None:
        if self._relay is not None:
            self._relay.reset_all()
        if self._listener is not None:
            self._listener.close()  # queued connections are refused by the kernel
        if self._selector is not None:
            self._selector.close()
        with self._lock:
            self._running = False
            commands, self._commands = self._commands, []
        for command, done in commands:
            command()
            done.set()
        self._publish_count()

    def _publish_count(self) -> None:
        count = 0 if self._relay is None else len(self._relay.pairs)
        if count != self._count:
            with self._count_changed:
                self._count = count
                self._count_changed.notify_all()
