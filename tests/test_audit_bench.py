"""The benchmark paces the waits that `up` and `down` really make (bench/README.md says 1 s)."""

from __future__ import annotations

import pytest
from bench_modules import load

from lab import instances, teardown, volumes


@pytest.fixture
def bench(monkeypatch):
    return load("provision_bench", monkeypatch)


def test_benchmark_sets_every_poll_delay_of_up_and_down_to_one_second(bench, monkeypatch):
    real = {(instances, "POLL_SECONDS"), (volumes, "POLL_SECONDS"),
            (teardown, "TERMINATE_POLL_SECONDS"), (teardown, "GONE_POLL_SECONDS")}
    for module, name in real:
        monkeypatch.setattr(module, name, 99.0)  # restored after the test
    bench._pace_waits()
    assert {(module, name): getattr(module, name) for module, name in real} == dict.fromkeys(real, 1.0)
    assert set(bench.paced_waits()) == real


def test_benchmark_stops_when_a_paced_constant_no_longer_exists(bench, monkeypatch):
    monkeypatch.delattr(volumes, "POLL_SECONDS")
    monkeypatch.setattr(instances, "POLL_SECONDS", instances.POLL_SECONDS)
    with pytest.raises(SystemExit, match="lab.volumes.POLL_SECONDS does not exist"):
        bench._pace_waits()
