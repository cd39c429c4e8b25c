"""Is the store configured to keep what it acknowledged? Read once at start (README:
"Production Redis").

Replay protection and the audit stream live in the store: a Redis that restarts without an
append-only file, or that evicts keys under memory pressure, forgets tokens already used and
audit entries not yet persisted. The service defends itself against a loss (the store epoch,
`app.verification.epoch`), but only by refusing every recent token; the configuration is what
prevents the loss. What is checked, from `INFO persistence` / `INFO memory` (allowed on most
managed services, unlike `CONFIG GET`, which is tried only for the fsync policy):

- `aof_enabled:1` (`appendonly yes`);
- `appendfsync` `always` or `everysec` (`no` leaves flushing to the OS); unknown is not a
  problem in itself, since managed services often refuse `CONFIG GET`;
- `maxmemory_policy:noeviction` (every other policy may evict replay records: `volatile-*`
  ones precisely those, since they carry a TTL).

Anything that cannot be read is "unknown", never assumed good.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from app.store.base import Store
from app.store.memory import MemoryStore
from app.store.redis import RedisClusterStore, RedisStore

logger = logging.getLogger("ssc.store")


class DurabilityState(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    """The store will lose acknowledged data on a restart or under memory pressure."""
    UNKNOWN = "unknown"
    """The store would not say (INFO refused) or could not be reached."""
    IN_PROCESS = "in-process"
    """The memory store: one process, gone with it (development)."""


@dataclass(frozen=True, slots=True)
class Durability:
    state: DurabilityState
    problems: tuple[str, ...] = ()
    observed: Mapping[str, str] = field(default_factory=dict)
    """What was read, e.g. {"appendonly": "yes", "appendfsync": "always", ...}."""


class StoreNotDurable(RuntimeError):
    """`SSC_REQUIRE_PERSISTENT_STORE=true` and the store is not known to be persistent."""


def report_durability(durability: Durability, *, required: bool) -> None:
    """Logs what start-up found, loudly when the store may lose data.

    :raises StoreNotDurable: when `required` and the store is not known to be persistent
        (the memory store and an unknown configuration included).
    """
    problems = "; ".join(durability.problems)
    if durability.state is DurabilityState.OK:
        logger.info("store persistence ok: %s", dict(durability.observed))
    elif durability.state is DurabilityState.IN_PROCESS and not required:
        logger.info("memory store: nothing survives a restart (development only)")
    else:
        logger.error(
            "STORE NOT PERSISTENT (%s): %s. Replay protection and audit entries not yet "
            "written will be lost on a restart; the service then refuses every token from "
            "before the loss (reissue_required). See README: Production Redis.",
            durability.state.value,
            problems,
        )
    if required and durability.state is not DurabilityState.OK:
        raise StoreNotDurable(
            f"SSC_REQUIRE_PERSISTENT_STORE=true and the store is {durability.state.value}: "
            f"{problems}"
        )


async def inspect_durability(store: Store) -> Durability:
    """Never raises: an unreachable store, or one that refuses INFO, is UNKNOWN."""
    if isinstance(store, MemoryStore):
        return Durability(
            DurabilityState.IN_PROCESS,
            ("the memory store lives in this process only: a restart forgets everything",),
        )
    if not isinstance(store, RedisStore):
        return Durability(DurabilityState.UNKNOWN, ("not a store this check knows",))
    client: Any = store._redis
    # A cluster: every master keeps its own part of the data.
    where: dict[str, Any] = (
        {"target_nodes": RedisCluster.PRIMARIES} if isinstance(store, RedisClusterStore) else {}
    )
    try:
        persistence = await client.info("persistence", **where)
        memory = await client.info("memory", **where)
    except (RedisError, RedisClusterException, OSError) as error:
        return Durability(DurabilityState.UNKNOWN, (f"INFO not answered: {error}",))
    try:
        fsync = _fsync(await client.config_get("appendfsync", **where))
    except (RedisError, RedisClusterException, OSError):
        fsync = "unknown"  # Managed services often refuse CONFIG.
    return assess(_per_node(persistence, memory), fsync)


def assess(nodes: list[tuple[Mapping[str, Any], Mapping[str, Any]]], fsync: str) -> Durability:
    """The verdict on what `INFO persistence` and `INFO memory` said (one pair per master)."""
    problems: list[str] = []
    observed: dict[str, str] = {"appendfsync": fsync}
    for persistence, memory in nodes:
        aof = str(persistence.get("aof_enabled", "?"))
        policy = str(memory.get("maxmemory_policy", "?"))
        observed["appendonly"] = "yes" if aof == "1" else "no" if aof == "0" else "unknown"
        observed["maxmemory_policy"] = policy
        if aof == "0":
            problems.append(
                "appendonly is off: a restart loses every replay record and audit entry since "
                "the last snapshot"
            )
        if policy not in {"noeviction", "?"}:
            problems.append(
                f"maxmemory-policy is {policy}: under memory pressure Redis evicts replay "
                "records (tokens become valid again); use noeviction"
            )
        if aof == "?" or policy == "?":
            missing = ("INFO lacks aof_enabled or maxmemory_policy",)
            return Durability(DurabilityState.UNKNOWN, missing, observed)
    if fsync == "no":
        problems.append("appendfsync is no: the OS decides when the AOF reaches the disk")
    state = DurabilityState.DEGRADED if problems else DurabilityState.OK
    return Durability(state, tuple(dict.fromkeys(problems)), observed)


def _per_node(persistence: Any, memory: Any) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """One Redis answers a dict of fields; a cluster client a dict of them per node."""
    if "aof_enabled" in persistence or "maxmemory_policy" in memory:
        return [(persistence, memory)]
    return [(persistence[node], memory.get(node, {})) for node in persistence]


def _fsync(reply: Any) -> str:
    """`CONFIG GET appendfsync` of one Redis, or the weakest of a cluster's masters."""
    values = {_text(v) for k, v in _pairs(reply) if _text(k) == "appendfsync"}
    for weakest in ("no", "everysec", "always"):
        if weakest in values:
            return weakest
    return "unknown"


def _pairs(reply: Any) -> list[tuple[Any, Any]]:
    if isinstance(reply, dict):
        if any(_text(key) == "appendfsync" for key in reply):
            return list(reply.items())
        return [pair for node in reply.values() for pair in _pairs(node)]
    return []


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
