"""The national-peak report calls the target met only when the audit consumer kept up."""

from load.peak import TARGET, PeakRun, report


def _run(*, scans: int, drain_seconds: float, audit_rows: int | None = None) -> PeakRun:
    return PeakRun(
        seconds=60.0,
        requests=scans // 100,
        scans=scans,
        errors=0,
        p99_ms=50.0,
        server_cpu_s=100.0,
        drain_seconds=drain_seconds,
        backlog_end=0,
        in_flight=800,
        audit_rows=scans if audit_rows is None else audit_rows,
        valid_rows=scans,
    )


def _verdict(run: PeakRun) -> str:
    (line,) = [line for line in report(run) if line.startswith("| scans sent")]
    return line


def test_verdicts_and_audit_rows_at_the_target_rate_meet_it() -> None:
    run = _run(scans=TARGET * 66, drain_seconds=2.0)
    assert run.persisted_per_s >= TARGET
    assert "met)" in _verdict(run) and "not met" not in _verdict(run)


def test_verdicts_whose_audit_rows_are_written_long_after_do_not() -> None:
    run = _run(scans=TARGET * 66, drain_seconds=60.0)
    assert run.scans_per_s >= TARGET > run.persisted_per_s
    assert "not met" in _verdict(run)


def test_missing_audit_rows_do_not() -> None:
    run = _run(scans=TARGET * 66, drain_seconds=1.0, audit_rows=TARGET * 60)
    assert "not met" in _verdict(run)
    assert any("audit events missing" in line for line in report(run))
