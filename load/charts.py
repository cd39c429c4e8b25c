"""The pictures of load/RESULTS.md (matplotlib, PNG under load/), drawn by
`load.run_benchmarks` from the figures of the same run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from load.latency import LatencyResult
from load.peak import PeakRun

LOAD = Path(__file__).resolve().parent
THROUGHPUT_PNG = LOAD / "throughput.png"
PEAK_PNG = LOAD / "peak_backlog.png"


def throughput(curves: Mapping[str, Sequence[LatencyResult]], path: Path = THROUGHPUT_PNG) -> Path:
    """Achieved req/s against offered req/s (left), p50 and p99 latency (right), per server."""
    figure, (rate_axis, latency_axis) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for (name, points), colour in zip(curves.items(), ("tab:blue", "tab:orange"), strict=False):
        offered = [point.target_rate for point in points]
        rate_axis.plot(offered, [p.achieved_rate for p in points], "o-", color=colour, label=name)
        latency_axis.plot(
            offered, [p.p50_ms for p in points], "o--", color=colour, label=f"{name} p50"
        )
        latency_axis.plot(
            offered, [p.p99_ms for p in points], "s-", color=colour, label=f"{name} p99"
        )
    top = max((p.target_rate for points in curves.values() for p in points), default=1)
    rate_axis.plot([0, top], [0, top], ":", color="grey", label="offered = achieved")
    rate_axis.set(
        xlabel="offered req/s (open loop)", ylabel="achieved req/s", title="Throughput, 1 worker"
    )
    latency_axis.set(
        xlabel="offered req/s (open loop)", ylabel="latency ms (log)", title="Latency", yscale="log"
    )
    latency_axis.axhline(10, color="red", linewidth=0.8, linestyle=":", label="10 ms")
    for axis in (rate_axis, latency_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def peak_backlog(peak: PeakRun, path: Path = PEAK_PNG) -> Path:
    """The audit backlog and the persisted rows over the national-peak run."""
    figure, axis = plt.subplots(figsize=(8, 4), dpi=110)
    times = [sample[0] for sample in peak.samples]
    axis.plot(times, [sample[1] for sample in peak.samples], color="tab:red", label="backlog")
    axis.plot(
        times, [sample[2] for sample in peak.samples], color="tab:green", label="rows persisted"
    )
    axis.axvline(peak.seconds, color="grey", linestyle=":", label="load ends")
    axis.set(xlabel="seconds", ylabel="audit entries", title="Audit backlog, national-peak run")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
