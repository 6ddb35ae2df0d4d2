"""make bench-cloud's side on this machine: what cloud_load.py prints on the controller, as a table row."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from fakes import FakeRemote

from labcore.remote import RunResult

# bench/ is scripts, not a package: loaded from its file as tests/test_bench_twin.py does
_SPEC = importlib.util.spec_from_file_location(
    "cloud_load_bench", Path(__file__).resolve().parent.parent / "bench" / "cloud_load_bench.py")
_BENCH = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_BENCH)
row, run_load = _BENCH.row, _BENCH.run_load

FOUND = {"clients": 4, "seconds": 20.0, "requests": 800, "errors": 0, "error_kinds": {}, "left_behind": [],
         "ops": {"token": {"count": 267, "p50_ms": 61.0, "p99_ms": 180.2}, "put": {"count": 267, "p50_ms": 30.5,
                                                                                "p99_ms": 90.0},
                 "get": {"count": 266, "p50_ms": 12.0, "p99_ms": 40.1}}}


def test_the_load_runs_on_the_controller_with_the_demo_openrc_and_becomes_a_row():
    controller = FakeRemote("controller").answer(r"cloud_load\.py", RunResult(0, json.dumps(FOUND) + "\n"))
    found = run_load(controller, "python3", 20, 4)
    assert controller.commands == ["python3 /usr/local/lib/openstack-ec2-lab/cloud_load.py /root/demo-openrc 20 4"]
    assert row(found) == ["4", "800", "40.0", "0", "61.0 / 180.2", "30.5 / 90.0", "12.0 / 40.1"]


def test_a_load_with_errors_is_still_read_and_a_broken_run_is_one_line():
    failing = {**FOUND, "errors": 2, "error_kinds": {"token: RemoteDisconnected": 2}}
    assert run_load(FakeRemote("c").answer(r".", RunResult(1, json.dumps(failing))), "python3", 20, 4)["errors"] == 2
    with pytest.raises(SystemExit, match="cloud_load.py on the controller: exit 2: cloud_load.py: SECONDS"):
        run_load(FakeRemote("c").answer(r".", RunResult(2, "", "cloud_load.py: SECONDS: expected 1 to 600")),
                 "python3", 20, 4)
