"""The load generator's text report: what a step cost in CPU per message, for the broker and for the
generator itself (the figure that says how far a machine can go)."""

from __future__ import annotations

from benchmarks.report import RunReport, StepReport, format_runs


def _step(*, sent: int, broker_cpu: float | None, worker_cpu: list[float]) -> StepReport:
    return StepReport(
        label="1000/s",
        rate=1000.0,
        seconds=5.0,
        sent=sent,
        expected=sent,
        delivered=sent,
        latencies={},
        errors={},
        behind=0,
        lost_connections=0,
        broker_cpu=broker_cpu,
        broker_rss=0,
        worker_cpu=worker_cpu,
        machine_cpu=150.0,
        cores=2,
    )


def test_cpu_per_message_is_a_cores_share_spread_over_the_messages_sent() -> None:
    step = _step(sent=5000, broker_cpu=90.0, worker_cpu=[20.0, 20.0])
    assert step.cpu_per_message(90.0) == 900.0  # 0.9 s of CPU a second over 1,000 messages a second
    assert step.cpu_per_message(None) is None
    assert _step(sent=0, broker_cpu=90.0, worker_cpu=[]).cpu_per_message(90.0) is None


def test_the_report_shows_broker_and_generator_cpu_per_message() -> None:
    run = RunReport(
        broker="mqchat",
        mode="chat",
        procs=2,
        idle=0,
        pairs=1,
        groups=0,
        group_size=0,
        connections=2,
        connect_failed=0,
        connect_seconds=0.1,
        connect_errors=[],
        rss_before=0,
        rss_after=0,
        steps=[_step(sent=5000, broker_cpu=90.0, worker_cpu=[20.0, 20.0])],
    )
    header, row = format_runs([run]).splitlines()[2:4]
    assert "CPU µs/msg broker/gen" in header
    assert " 900/400 " in row
    unmeasured = _step(sent=5000, broker_cpu=None, worker_cpu=[20.0])
    assert " -/200 " in format_runs([RunReport(**{**run.__dict__, "steps": [unmeasured]})])
