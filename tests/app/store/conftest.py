"""A real three-master Redis Cluster on 127.0.0.1, started by the tests that ask for it."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from app.store.redis import RedisClusterStore, RedisStore

MASTERS = 3
START_BOUND = 20.0
"""Seconds a healthy machine needs at most to start the servers and agree on the slots."""


@dataclass
class LocalCluster:
    """`redis-server` processes in cluster mode without persistence, and the ports they own."""

    directory: Path
    ports: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> None:
        self.ports = _free_ports(MASTERS)
        for port in self.ports:
            node_dir = self.directory / str(port)
            node_dir.mkdir()
            self.processes.append(
                subprocess.Popen(
                    ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                     "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--dir", str(node_dir), "--save", "", "--appendonly", "no"],
                    stdout=subprocess.DEVNULL,
                )
            )  # fmt: skip
        deadline = time.monotonic() + START_BOUND
        for port in self.ports:
            _wait_until(deadline, partial(_answers, port), f"node {port} did not start")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, timeout=START_BOUND,
        )  # fmt: skip
        for port in self.ports:
            _wait_until(deadline, partial(_cluster_ok, port), f"node {port} not ok")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    missing = [tool for tool in ("redis-server", "redis-cli") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"a local Redis Cluster needs {' and '.join(missing)} on PATH")
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def cluster_store(redis_cluster: LocalCluster) -> AsyncIterator[RedisClusterStore]:
    """A fresh `RedisClusterStore` in its own namespace, dropped afterwards.

    Its timeout is 10 s instead of the default 0.5 s: a fresh store opens its connections to
    three nodes on first use, and the contract's 200 concurrent callers then wait for one of
    its 64 connections; on a loaded 2-core CI machine that wait once passed 0.5 s ("every
    connection is busy"), and once passed 2 s on a slower day (2026-12-03). The contract is
    about outcomes; failing fast on an unreachable cluster is tested with the default timeout
    (test_cluster.py).
    """
    store = RedisStore.from_url(
        redis_cluster.url, namespace=f"test-{uuid.uuid4().hex[:12]}", socket_timeout=10.0
    )
    assert isinstance(store, RedisClusterStore)
    yield store
    await store.drop_namespace()
    await store.close()


def _free_ports(count: int) -> list[int]:
    """Ports free together with their cluster bus port (port + 10000)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(20_000, 30_000)
        if port not in ports and _bindable(port) and _bindable(port + 10_000):
            ports.append(port)
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _cluster_ok(port: int) -> bool:
    info = subprocess.run(
        ["redis-cli", "-p", str(port), "cluster", "info"],
        capture_output=True, text=True, timeout=5, check=False,
    )  # fmt: skip
    return "cluster_state:ok" in info.stdout


def _wait_until(deadline: float, condition: Callable[[], bool], failure: str) -> None:
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis cluster: {failure}")
        time.sleep(0.05)
