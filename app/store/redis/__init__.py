"""The `Store` protocol on Redis: `RedisStore` (one server, `plain.py`), `RedisClusterStore`
(Redis Cluster, `cluster.py`), their Lua scripts (`lua/*.lua`, loaded by `scripts.py`).

`RedisStore.from_url` picks the class from the URL scheme (`redis+cluster://` and
`rediss+cluster://` give the cluster store).
"""

from app.store.redis.cluster import (
    CLUSTER_SLOTS,
    DEFAULT_SLOT_GROUPS,
    MAX_SLOT_GROUPS,
    STREAM_POLL_INTERVAL,
    RedisClusterStore,
    group_tags,
)
from app.store.redis.plain import CLUSTER_SCHEMES, RedisStore, RedisSubscription

__all__ = [
    "CLUSTER_SCHEMES",
    "CLUSTER_SLOTS",
    "DEFAULT_SLOT_GROUPS",
    "MAX_SLOT_GROUPS",
    "STREAM_POLL_INTERVAL",
    "RedisClusterStore",
    "RedisStore",
    "RedisSubscription",
    "group_tags",
]
