"""`ssc serve`'s HTTP protocol: a response's writes leave together, in order, and nothing
written before a close is lost."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from api.serving import CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> Any:
        return f"extra:{name}"


def coalescing(inner: RecordingTransport) -> CoalescingTransport:
    return CoalescingTransport(cast(asyncio.Transport, inner), asyncio.get_running_loop())


async def test_writes_of_one_turn_leave_in_one_send_in_order() -> None:
    inner = RecordingTransport()
    transport = coalescing(inner)
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert inner.sent == []
    assert transport.get_write_buffer_size() == 23
    await asyncio.sleep(0)
    assert inner.sent == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert inner.sent[-1] == b"next"


async def test_close_sends_what_was_written_first() -> None:
    inner = RecordingTransport()
    transport = coalescing(inner)
    transport.write(b"last words")
    transport.close()
    assert inner.sent == [b"last words"] and inner.closed
    await asyncio.sleep(0)
    assert inner.sent == [b"last words"]


async def test_abort_drops_unsent_data_and_other_calls_reach_the_transport() -> None:
    inner = RecordingTransport()
    transport = coalescing(inner)
    transport.write(b"never")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.sent == [] and inner.aborted
    assert transport.get_extra_info("peername") == "extra:peername"
