"""A loopback TCP proxy for tests, to put in front of PostgreSQL and cut or deafen the network.

One thread per proxy moves the bytes over non-blocking sockets, so ``cut()``, ``deafen()`` and
``restore()`` reach every connection at once and return only once they have taken effect.

What it cannot simulate: the proxy's kernel acknowledges every byte a client sends, so a deaf
proxy is not a lost network. TCP keepalives and ``tcp_user_timeout`` do not notice it; only the
client's own timeouts (``connect_timeout``, a read timeout, a pool's checks) do.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

__all__ = ["ProxyState", "TcpProxy"]

logger = logging.getLogger("django_pg_real_pool")

ProxyState = Literal["forwarding", "cut", "deaf"]

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_CHUNK = 65536
_BUFFER_LIMIT = 4 * _CHUNK  # per direction: past it we stop reading, so the sender blocks
_BACKLOG = 128
_CONNECTING = frozenset({0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN})
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN
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


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` so that its peer sees 'connection reset', not an orderly end of stream."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    sock.close()


def _no_delay(sock: socket.socket) -> None:
    # Nagle's algorithm against the peer's delayed ACK would add 40 ms to small messages.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(eq=False)
class _Pair:
    """A client connection and, once the proxy has connected it, its upstream connection."""

    client: socket.socket
    upstream: socket.socket | None = None
    connecting: bool = False
    deaf: bool = False
    client_eof: bool = False
    upstream_eof: bool = False
    to_client: bytearray = field(default_factory=bytearray)
    to_upstream: bytearray = field(default_factory=bytearray)


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
        self._pairs: set[_Pair] = set()
        self._registered: dict[socket.socket, int] = {}
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
            self._selector.register(listener, _READ, _LISTENER)
            self._selector.register(self._wake_r, _READ, _WAKE)
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
        for pair in list(self._pairs):
            self._drop(pair, reset=True)

    def _deafen(self) -> None:
        self._state = "deaf"
        for pair in self._pairs:
            pair.deaf = True
            pair.to_client.clear()
            pair.to_upstream.clear()
            if pair.connecting:
                self._discard_upstream(pair)

    def _restore(self) -> None:
        self._state = "forwarding"
        for pair in [pair for pair in self._pairs if pair.deaf]:
            self._drop(pair, reset=True)

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
        for pair in self._pairs:
            self._watch(pair)
        for key, mask in self._selector.select():
            if key.data == _LISTENER:
                self._accept()
            elif key.data == _WAKE:
                self._drain_wake_ups()
            else:
                self._on_ready(key.data, key.fileobj, mask)
        for pair in list(self._pairs):
            if (pair.client_eof and not pair.to_upstream) or (
                pair.upstream_eof and not pair.to_client
            ):
                self._drop(pair, reset=False)
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
            self._wake_r.recv(_CHUNK)

    def _shut_down(self) -> None:
        for pair in list(self._pairs):
            self._drop(pair, reset=True)
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
        count = len(self._pairs)
        if count != self._count:
            with self._count_changed:
                self._count = count
                self._count_changed.notify_all()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, say: the client waits in the queue
                logger.warning("proxy %s:%d cannot accept: %s", self.host, self.port, exc)
                return
            if self._state == "cut":
                _reset(client)
                continue
            client.setblocking(False)
            _no_delay(client)
            pair = _Pair(client, deaf=self._state == "deaf")
            self._pairs.add(pair)
            if not pair.deaf:
                self._connect(pair)

    def _connect(self, pair: _Pair) -> None:
        upstream = socket.socket(self._target_family, socket.SOCK_STREAM)
        upstream.setblocking(False)
        _no_delay(upstream)
        code = upstream.connect_ex(self._target)
        if code not in _CONNECTING:
            upstream.close()
            self._drop(pair, reset=True)
            return
        pair.upstream, pair.connecting = upstream, True

    def _watch(self, pair: _Pair) -> None:
        """Register the events each socket of ``pair`` is waiting for now."""
        if pair.deaf:
            self._register(pair.client, _READ, pair)
            if pair.upstream is not None:
                self._register(pair.upstream, _READ, pair)
            return
        client = _WRITE if pair.to_client else 0
        if not pair.client_eof and len(pair.to_upstream) < _BUFFER_LIMIT:
            client |= _READ
        self._register(pair.client, client, pair)
        if pair.upstream is None:
            return
        if pair.connecting:
            self._register(pair.upstream, _WRITE, pair)
            return
        upstream = _WRITE if pair.to_upstream else 0
        if not pair.upstream_eof and len(pair.to_client) < _BUFFER_LIMIT:
            upstream |= _READ
        self._register(pair.upstream, upstream, pair)

    def _register(self, sock: socket.socket, events: int, pair: _Pair) -> None:
        assert self._selector is not None
        current = self._registered.get(sock, 0)
        if events == current:
            return
        if not events:
            self._selector.unregister(sock)
            del self._registered[sock]
        elif not current:
            self._selector.register(sock, events, pair)
        else:
            self._selector.modify(sock, events, pair)
        if events:
            self._registered[sock] = events

    def _on_ready(self, pair: _Pair, fileobj: object, mask: int) -> None:
        if pair not in self._pairs:
            return  # dropped earlier in this round
        if fileobj is pair.client:
            if mask & _READ:
                self._receive(pair, from_client=True)
            if mask & _WRITE and pair in self._pairs:
                self._send(pair, to_client=True)
        elif fileobj is pair.upstream:
            if pair.connecting:
                self._connected(pair)
                return
            if mask & _READ:
                self._receive(pair, from_client=False)
            if mask & _WRITE and pair in self._pairs and pair.upstream is not None:
                self._send(pair, to_client=False)

    def _connected(self, pair: _Pair) -> None:
        assert pair.upstream is not None
        code = pair.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            logger.debug(
                "proxy %s:%d: %s:%d refused a connection: %s",
                self.host,
                self.port,
                *self._target,
                errno.errorcode.get(code, code),
            )
            self._drop(pair, reset=True)
        else:
            pair.connecting = False

    def _receive(self, pair: _Pair, *, from_client: bool) -> None:
        sock = pair.client if from_client else pair.upstream
        assert sock is not None
        try:
            data = sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(pair, reset=True)
            return
        if pair.deaf:
            # Nothing goes through, not even an end of stream; but a client that gives up is gone.
            if data:
                return
            if from_client:
                self._drop(pair, reset=False)
            else:
                self._discard_upstream(pair)
        elif not data:
            if from_client:
                pair.client_eof = True
            else:
                pair.upstream_eof = True
        elif from_client:
            pair.to_upstream += data
        else:
            pair.to_client += data

    def _send(self, pair: _Pair, *, to_client: bool) -> None:
        sock, buffer = (
            (pair.client, pair.to_client) if to_client else (pair.upstream, pair.to_upstream)
        )
        assert sock is not None
        try:
            sent = sock.send(buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(pair, reset=True)
            return
        del buffer[:sent]

    def _drop(self, pair: _Pair, *, reset: bool) -> None:
        self._pairs.discard(pair)
        self._discard(pair.client, reset=reset)
        self._discard_upstream(pair, reset=reset)

    def _discard_upstream(self, pair: _Pair, *, reset: bool = False) -> None:
        if pair.upstream is not None:
            self._discard(pair.upstream, reset=reset)
            pair.upstream, pair.connecting = None, False

    def _discard(self, sock: socket.socket, *, reset: bool) -> None:
        if self._registered.pop(sock, 0) and self._selector is not None:
            self._selector.unregister(sock)
        if reset:
            _reset(sock)
        else:
            sock.close()
