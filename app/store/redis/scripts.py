"""The Lua scripts of the Redis stores, kept as `.lua` files beside this module.

Each file starts with a comment giving its KEYS, ARGV and reply. They are read once, at
import, from the installed package (the wheel and the Docker image carry `lua/*.lua`).
"""

from __future__ import annotations

from importlib.resources import files


def _load(name: str) -> str:
    return files(__package__).joinpath("lua", name).read_text(encoding="utf-8")


CLAIM_SCANS = _load("claim_scans.lua")
"""`RedisStore.claim_scans`: one script for the whole batch (see `ScanClaim`)."""

CLAIM_GROUP = _load("claim_group.lua")
"""`RedisClusterStore`: the claims of one slot group, after their principals were read."""

INCR_WITH_TTL = _load("incr_with_ttl.lua")
"""`RedisClusterStore.incr` with a ttl, in one slot without MULTI."""

INCR_AND_GET_MANY = _load("incr_and_get_many.lua")
"""`RedisStore.incr_and_get_many`: the phone's QR path (rate counter and state) in one trip."""
WRITE_MANY = _load("write_many.lua")
"""`RedisStore.write_many`: values and counters of one batch (the misuse watch's) at once."""
