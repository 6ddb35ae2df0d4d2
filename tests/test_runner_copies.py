"""The runner's copies: a host that takes a file from another waits for exactly the steps
it needs there (all before it, or the one named by after_step), and a failing source stops
it without a read.
"""

from __future__ import annotations

import io
import threading
import time

import pytest
from fakes import HostFleet
from plan_fixtures import SECRETS, run_fakes
from rich.console import Console

from bootstrap.actions import CopySpec
from bootstrap.changes import Write
from bootstrap.plan import Plan, Step
from bootstrap.report import render_plan
from labcore.remote import RunResult

def _ring_plan() -> Plan:
    return Plan((Step("build", "swift-rings", ("controller",), commands=("build-ring",)),
                 Step("copy", "finalize", ("object1",),
                      copies=(CopySpec("controller", "/etc/swift/object.ring.gz"),), commands=("start-servers",)),
                 Step("proxy", "finalize", ("controller",), commands=("start-proxy",))))


def test_a_copy_waits_for_what_its_source_host_does_before_it_and_no_more(tmp_path):
    fleet = HostFleet()
    events: list[str] = []
    copied = threading.Event()
    controller = fleet["controller"]

    def build(command, _stdin):
        time.sleep(0.3)  # object1 has nothing else to do: it would read now if it did not wait
        controller.files["/etc/swift/object.ring.gz"] = (b"ring", 0o644, "root:root")
        events.append("ring built")
        return RunResult(0)

    def servers(command, _stdin):
        events.append("servers started")
        copied.set()
        return RunResult(0)

    def proxy(command, _stdin):
        # The proxy comes after the copy in the plan: the controller need not wait, and object1 not for it.
        events.append("proxy " + ("after the copy" if copied.wait(5) else "before the copy"))
        return RunResult(0)

    controller.answer("^build-ring$", build).answer("^start-proxy$", proxy)
    fleet["object1"].answer("^start-servers$", servers)

    report = run_fakes(_ring_plan(), fleet, tmp_path)

    assert report.ok, report.failure
    assert events == ["ring built", "servers started", "proxy after the copy"]
    assert fleet["object1"].sent[0] == Write("/etc/swift/object.ring.gz", b"ring", 0o644, "root:root")


@pytest.mark.parametrize("after_step", ["build", None], ids=["after-the-build", "after-everything-before"])
def test_a_copy_after_a_named_step_does_not_wait_for_the_sources_later_phases(tmp_path, after_step):
    """The storage nodes take the rings once they are built and start their servers while
    the controller still sets up Keystone; without after_step the copy waits for Keystone."""
    fleet = HostFleet()
    controller = fleet["controller"]
    servers_up = threading.Event()
    events: list[str] = []

    def build(command, _stdin):
        controller.files["/etc/swift/object.ring.gz"] = (b"ring", 0o644, "root:root")
        return RunResult(0)

    def keystone(command, _stdin):
        events.append("keystone done " + ("after the servers started" if servers_up.wait(2) else "first"))
        return RunResult(0)

    controller.answer("^build-ring$", build).answer("^keystone-manage$", keystone)
    fleet["object1"].answer("^start-servers$", lambda c, s: (servers_up.set(), RunResult(0))[1])
    plan = Plan((Step("keystone", "keystone", ("controller",), commands=("keystone-manage",)),
                 Step("build", "swift-rings", ("controller",), commands=("build-ring",)),
                 Step("copy", "finalize", ("object1",), copies=(CopySpec("controller", "/etc/swift/object.ring.gz"),),
                      commands=("start-servers",), after_step=after_step)))

    report = run_fakes(plan, fleet, tmp_path)

    assert report.ok, report.failure
    assert events == ["keystone done after the servers started" if after_step else "keystone done first"]
    assert fleet["object1"].sent[0] == Write("/etc/swift/object.ring.gz", b"ring", 0o644, "root:root")


def test_the_plan_says_which_step_a_copy_waits_for():
    plan = Plan((Step("build", "swift-rings", ("controller",), commands=("build-ring",)),
                 Step("copy", "finalize", ("object1",), copies=(CopySpec("controller", "/etc/swift/object.ring.gz"),),
                      after_step="build")))
    out = io.StringIO()
    render_plan(plan, SECRETS, Console(file=out, width=200))
    assert "  copy  on object1  (once build is done on controller)" in out.getvalue()
    assert plan.made_at() == {"build": 0}
    assert [row["after_step"] for row in plan.as_rows(SECRETS)] == [None, "build"]


def test_a_failing_source_stops_the_host_waiting_for_its_copy(tmp_path):
    fleet = HostFleet()
    fleet["controller"].answer("^build-ring$", RunResult(2, "", "swift-ring-builder: no devices"))
    lines: list[str] = []

    report = run_fakes(_ring_plan(), fleet, tmp_path, progress=lines.append)

    assert (report.failure.host, report.failure.step) == ("controller", "build")
    assert fleet["controller"].reads == [] and fleet["object1"].sent == [] and fleet["object1"].asked == []
    assert report.counts("object1")["not run"] == 1 and report.counts("controller")["not run"] == 1
    assert "  object1: finalize (2/2): nothing run in 0.0s  (1 not started: stopping after a failure)" in lines
