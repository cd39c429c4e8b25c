"""`ClaimChannel`: one pipelined Redis connection that carries the verify path's claim script.

redis-py's generic command path (connection pool, retry wrapper, per-call timeout context,
argument encoder, response callbacks) cost about as much CPU as the whole ES256 check of a
scan (load/PROFILE.md). This channel sends the already-packed command (`hiredis.pack_command`)
on one connection per event loop and matches replies to callers in order, as RESP
guarantees: many requests share the connection without waiting for each other, and the
commands written in one turn of the event loop leave in one send.

Failing closed, as the rest of `RedisStore`: a connection that cannot be opened, breaks, or
leaves its oldest command unanswered for `timeout` seconds is dropped, every caller waiting
on it gets `StoreUnavailable`, and the next call opens a new one. One timer per connection
watches the oldest command, rather than one timeout per call.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
from dataclasses import dataclass
from typing import Any, cast

import hiredis

from app.store.base import StoreUnavailable

Reply = Any
"""A decoded RESP reply: bytes, int, None, a list of replies, or a `hiredis.ReplyError`."""


@dataclass(frozen=True, slots=True)
class ChannelAddress:
    """Where and how to connect: plain TCP, optional AUTH and SELECT."""

    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None


class _Waiting:
    __slots__ = ("deadline", "future")

    def __init__(self, future: asyncio.Future[Reply], deadline: float) -> None:
        self.future = future
        self.deadline = deadline


class _Connection(asyncio.Protocol):
    """Replies are handed to waiting callers in the order their commands were written."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[_Waiting] = collections.deque()
        self.broken: str | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._unsent: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.waiting
        try:
            while (reply := self.reader.gets()) is not False:
                if not waiting:
                    self.fail("redis sent a reply nobody asked for")
                    return
                future = waiting.popleft().future
                if not future.done():
                    future.set_result(reply)
        except hiredis.ProtocolError as error:
            self.fail(f"redis protocol error: {error}")

    def connection_lost(self, error: Exception | None) -> None:
        self.fail(f"redis connection lost: {error or 'closed'}")

    def send(self, command: bytes) -> asyncio.Future[Reply]:
        if self.broken is not None or self.transport is None:
            raise StoreUnavailable(self.broken or "redis connection not open")
        future: asyncio.Future[Reply] = self.loop.create_future()
        self.waiting.append(_Waiting(future, self.loop.time() + self.timeout))
        if not self._unsent:
            self.loop.call_soon(self._flush)
        self._unsent.append(command)
        if self._watchdog is None:
            self._watchdog = self.loop.call_at(self.waiting[0].deadline, self._watch)
        return future

    def _flush(self) -> None:
        """Sends what the callers of one event-loop turn wrote, in one system call: on a
        loaded worker several requests reach their claim in the same turn, and every send
        also wakes Redis."""
        unsent, self._unsent = self._unsent, []
        if self.broken is None and self.transport is not None:
            self.transport.write(b"".join(unsent))

    def _watch(self) -> None:
        """Fails the connection when its oldest command is overdue; otherwise re-arms."""
        self._watchdog = None
        if not self.waiting:
            return
        oldest = self.waiting[0].deadline
        if oldest <= self.loop.time():
            self.fail(f"redis did not answer within {self.timeout} s")
        else:
            self._watchdog = self.loop.call_at(oldest, self._watch)

    def fail(self, reason: str) -> None:
        if self.broken is None:
            self.broken = reason
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self.waiting:
            future = self.waiting.popleft().future
            if not future.done():
                future.set_exception(StoreUnavailable(reason))
        if self.transport is not None:
            self.transport.abort()


class ClaimChannel:
    """Runs one Lua script with pre-packed arguments; see the module docstring."""

    def __init__(self, address: ChannelAddress, script: str, *, timeout: float) -> None:
        self.address = address
        self.script = script.encode()
        # Redis names scripts by their SHA-1 (EVALSHA); not a security use.
        self.sha = hashlib.sha1(self.script, usedforsecurity=False).hexdigest().encode()
        self.timeout = timeout
        self._connection: _Connection | None = None
        self._opening: asyncio.Task[_Connection] | None = None

    async def run_script(self, keys: list[str], args: list[Any]) -> Reply:
        """The script's reply; loads the script into Redis when Redis does not know it.

        :raises StoreUnavailable: on any connection failure or timeout, or an error reply.
        """
        connection = self._connection
        if (
            connection is None
            or connection.broken is not None
            or connection.loop is not asyncio.get_running_loop()
        ):  # checked here first: a coroutine per scan to find the open connection costs
            connection = await self._open()
        reply = await connection.send(
            hiredis.pack_command((b"EVALSHA", self.sha, len(keys), *keys, *args))
        )
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = await connection.send(
                hiredis.pack_command((b"EVAL", self.script, len(keys), *keys, *args))
            )
        if isinstance(reply, hiredis.ReplyError):
            raise StoreUnavailable(f"redis: {reply}")
        return reply

    async def _open(self) -> _Connection:
        connection = self._connection
        if (
            connection is not None
            and connection.broken is None
            and connection.loop is asyncio.get_running_loop()
        ):
            return connection
        if self._opening is None or self._opening.get_loop() is not asyncio.get_running_loop():
            self._opening = asyncio.ensure_future(self._connect())
        opening = self._opening
        try:
            self._connection = await asyncio.shield(opening)
        finally:
            if opening.done() and self._opening is opening:
                self._opening = None
        return self._connection

    async def _connect(self) -> _Connection:
        """A connection that has passed AUTH and SELECT; one that fails on the way is closed."""
        loop = asyncio.get_running_loop()
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self.timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, self.timeout), self.address.host, self.address.port
                )
                for command in self._setup_commands():
                    reply = await connection.send(hiredis.pack_command(command))
                    if isinstance(reply, hiredis.ReplyError):
                        raise StoreUnavailable(f"redis refused {command[0].decode()}: {reply}")
        except BaseException as error:
            if connection is not None:
                connection.fail("redis connection setup did not complete")
            if isinstance(error, OSError | TimeoutError):
                raise StoreUnavailable(f"redis: {error or type(error).__name__}") from error
            raise
        return connection

    def _setup_commands(self) -> list[tuple[Any, ...]]:
        address = self.address
        commands: list[tuple[Any, ...]] = []
        if address.password is not None:
            commands.append(
                (b"AUTH", address.password)
                if address.username is None
                else (b"AUTH", address.username, address.password)
            )
        if address.db:
            commands.append((b"SELECT", address.db))
        return commands

    def close(self) -> None:
        if self._connection is not None:
            self._connection.fail("channel closed")
            self._connection = None
