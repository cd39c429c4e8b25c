"""`RequestMetrics` keeps plain counts and exposes them when scraped: the exposition is what
prometheus_client's own `Counter` and `Histogram` would print for the same requests."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from api.middleware import LATENCY_BUCKETS, RequestMetrics

REQUESTS = [
    ("POST", "/v1/verify", 200, 0.0004),
    ("POST", "/v1/verify", 200, 0.001),  # on a bucket's bound: counted in it (le)
    ("POST", "/v1/verify", 401, 0.003),
    ("GET", "/healthz", 200, 0.02),
    ("POST", "/v1/verify", 200, 7.5),  # beyond the last bound: +Inf only
]
VERDICTS = ["valid", "valid", "replayed"]


def _series(registry: CollectorRegistry) -> set[str]:
    """The exposition's sample lines, without the optional `_created` series."""
    lines = generate_latest(registry).decode().splitlines()
    return {line for line in lines if line and not line.startswith("#") and "_created" not in line}


def test_the_exposition_is_prometheus_clients_for_the_same_requests() -> None:
    ours = RequestMetrics(CollectorRegistry())
    reference = CollectorRegistry()
    requests = Counter(
        "ssc_http_requests_total", "x", ["method", "route", "status"], registry=reference
    )
    latency = Histogram(
        "ssc_http_request_duration_seconds",
        "x",
        ["method", "route"],
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    verdicts = Counter("ssc_verify_verdicts_total", "x", ["verdict"], registry=reference)
    Counter("ssc_store_unavailable_total", "x", registry=reference)
    for method, route, status, seconds in REQUESTS:
        ours.observe(method, route, status, seconds)
        requests.labels(method, route, str(status)).inc()
        latency.labels(method, route).observe(seconds)
    for verdict in VERDICTS:
        ours.count_verdict(verdict)
        verdicts.labels(verdict).inc()
    expected = _series(reference)
    assert (
        'ssc_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/v1/verify"} 2.0'
        in expected
    )
    assert _series(ours.registry) == expected
