"""The machine line of a benchmark report: which CPU, how many cores, how fast it runs Python."""

from __future__ import annotations

import os

from benchmarks.machine import cpu_model, describe, reference_us


def test_the_reference_workload_takes_a_positive_and_repeatable_time() -> None:
    first, second = reference_us(rounds=50, tries=3), reference_us(rounds=50, tries=3)
    assert first > 0 and second > 0
    assert 0.2 < first / second < 5  # the same work: the same order of magnitude, whatever the load


def test_the_machine_is_described_by_its_cpu_cores_and_reference() -> None:
    machine = describe()
    assert machine.cpu == cpu_model() != ""
    assert machine.cores == os.cpu_count()
    line = machine.line()
    assert line.startswith(f"machine: {machine.cpu}, {machine.cores} cores; Python reference ")
    assert f"{machine.reference_us:.1f} µs" in line
