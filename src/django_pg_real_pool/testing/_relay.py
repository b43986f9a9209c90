"""The connections of one TcpProxy and the bytes between them, moved by its loop thread.

Only the proxy's loop thread calls a ``Relay`` (or the proxy itself, while no loop runs).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import struct
from dataclasses import dataclass, field
from typing import Literal

logger = logging.getLogger("django_pg_real_pool")

ProxyState = Literal["forwarding", "cut", "deaf"]

READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
CHUNK = 65536
_BUFFER_LIMIT = 4 * CHUNK  # per direction: past it we stop reading, so the sender blocks
_CONNECTING = frozenset({0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN})
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN


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
class Pair:
    """A client connection and, once the proxy has connected it, its upstream connection."""

    client: socket.socket
    upstream: socket.socket | None = None
    connecting: bool = False
    deaf: bool = False
    client_eof: bool = False
    upstream_eof: bool = False
    to_client: bytearray = field(default_factory=bytearray)
    to_upstream: bytearray = field(default_factory=bytearray)


class Relay:
    """Client connections, their upstream connections, and what each waits for."""

    def __init__(
        self,
        selector: selectors.BaseSelector,
        listener: socket.socket,
        *,
        target: tuple[str, int],
        target_family: socket.AddressFamily,
        name: str,
    ) -> None:
        self._selector = selector
        self._listener = listener
        self._target = target
        self._target_family = target_family
        self._name = name  # host:port of the proxy, for messages
        self.pairs: set[Pair] = set()
        self._registered: dict[socket.socket, int] = {}

    # What the proxy's commands do to every connection.

    def reset_all(self) -> None:
        """Reset every connection (a cut, or the proxy closing)."""
        for pair in list(self.pairs):
            self._drop(pair, reset=True)

    def deafen_all(self) -> None:
        """Drop every byte of every connection from now on."""
        for pair in self.pairs:
            pair.deaf = True
            pair.to_client.clear()
            pair.to_upstream.clear()
            if pair.connecting:
                self._discard_upstream(pair)

    def reset_deaf(self) -> None:
        """Reset the connections that were deaf: bytes were lost, their streams are unusable."""
        for pair in [pair for pair in self.pairs if pair.deaf]:
            self._drop(pair, reset=True)

    # One round of I/O.

    def watch_all(self) -> None:
        for pair in self.pairs:
            self._watch(pair)

    def close_finished(self) -> None:
        """Close the pairs one side of which ended and whose data has been passed on."""
        for pair in list(self.pairs):
            if (pair.client_eof and not pair.to_upstream) or (
                pair.upstream_eof and not pair.to_client
            ):
                self._drop(pair, reset=False)

    def accept(self, state: ProxyState) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, say: the client waits in the queue
                logger.warning("proxy %s cannot accept: %s", self._name, exc)
                return
            if state == "cut":
                _reset(client)
                continue
            client.setblocking(False)
            _no_delay(client)
            pair = Pair(client, deaf=state == "deaf")
            self.pairs.add(pair)
            if not pair.deaf:
                self._connect(pair)

    def _connect(self, pair: Pair) -> None:
        upstream = socket.socket(self._target_family, socket.SOCK_STREAM)
        upstream.setblocking(False)
        _no_delay(upstream)
        code = upstream.connect_ex(self._target)
        if code not in _CONNECTING:
            upstream.close()
            self._drop(pair, reset=True)
            return
        pair.upstream, pair.connecting = upstream, True

    def _watch(self, pair: Pair) -> None:
        """Register the events each socket of ``pair`` is waiting for now."""
        if pair.deaf:
            self._register(pair.client, READ, pair)
            if pair.upstream is not None:
                self._register(pair.upstream, READ, pair)
            return
        client = _WRITE if pair.to_client else 0
        if not pair.client_eof and len(pair.to_upstream) < _BUFFER_LIMIT:
            client |= READ
        self._register(pair.client, client, pair)
        if pair.upstream is None:
            return
        if pair.connecting:
            self._register(pair.upstream, _WRITE, pair)
            return
        upstream = _WRITE if pair.to_upstream else 0
        if not pair.upstream_eof and len(pair.to_client) < _BUFFER_LIMIT:
            upstream |= READ
        self._register(pair.upstream, upstream, pair)

    def _register(self, sock: socket.socket, events: int, pair: Pair) -> None:
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

    def on_ready(self, pair: Pair, fileobj: object, mask: int) -> None:
        if pair not in self.pairs:
            return  # dropped earlier in this round
        if fileobj is pair.client:
            if mask & READ:
                self._receive(pair, from_client=True)
            if mask & _WRITE and pair in self.pairs:
                self._send(pair, to_client=True)
        elif fileobj is pair.upstream:
            if pair.connecting:
                self._connected(pair)
                return
            if mask & READ:
                self._receive(pair, from_client=False)
            if mask & _WRITE and pair in self.pairs and pair.upstream is not None:
                self._send(pair, to_client=False)

    def _connected(self, pair: Pair) -> None:
        assert pair.upstream is not None
        code = pair.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            logger.debug(
                "proxy %s: %s:%d refused a connection: %s",
                self._name,
                *self._target,
                errno.errorcode.get(code, code),
            )
            self._drop(pair, reset=True)
        else:
            pair.connecting = False

    def _receive(self, pair: Pair, *, from_client: bool) -> None:
        sock = pair.client if from_client else pair.upstream
        assert sock is not None
        try:
            data = sock.recv(CHUNK)
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

    def _send(self, pair: Pair, *, to_client: bool) -> None:
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

    def _drop(self, pair: Pair, *, reset: bool) -> None:
        self.pairs.discard(pair)
        self._discard(pair.client, reset=reset)
        self._discard_upstream(pair, reset=reset)

    def _discard_upstream(self, pair: Pair, *, reset: bool = False) -> None:
        if pair.upstream is not None:
            self._discard(pair.upstream, reset=reset)
            pair.upstream, pair.connecting = None, False

    def _discard(self, sock: socket.socket, *, reset: bool) -> None:
        if self._registered.pop(sock, 0):
            self._selector.unregister(sock)
        if reset:
            _reset(sock)
        else:
            sock.close()
