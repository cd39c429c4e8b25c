"""Identifiers unique across processes and restarts, at the cost of a counter step.

The verify path needs several per request (request id, audit event id, scan id); a system
call for randomness each time showed in its profile (load/PROFILE.md). They identify, they
authorise nothing, so they need to be unique, not unpredictable.
"""

from __future__ import annotations

import itertools
import os


class UniqueIds:
    """32 hex digits: a random per-process prefix (renewed in a forked child) and a counter."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


unique_ids = UniqueIds()
