"""Smoke check of load/vault_memory.py on a small file: it sets up a live server, uploads and
downloads through it, checks the bytes and reports the figures (the figure itself is
measured by the script on 50 MB, see load/RESULTS.md)."""

import shutil

import pytest

from load.vault_memory import LIMIT_MB, measure, report


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_measures_a_small_round_trip() -> None:
    figures = measure(2)
    assert figures["megabytes"] == 2
    assert figures["rss_before_download_mib"] > 20  # the API's own process tree was sampled
    assert figures["download_peak_delta_mib"] < LIMIT_MB
    assert "## Vault: streaming memory" in report(figures, "cmd")
