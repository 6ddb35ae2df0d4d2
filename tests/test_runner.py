"""The runner: each host its steps in phase order, hosts in parallel, copies after their source,
files written only when they differ, failures stop the run, facts asked few times.

The hosts are FakeHosts: the tests assert on what the runner asked them (typed facts) and
sent them (typed writes and commands), never on the runner's own shell.
"""

from __future__ import annotations

import io
import threading
import time

import pytest
from fakes import FakeHost, HostFleet, UnexpectedCommand
from plan_fixtures import SECRET, SECRETS, ok, run_fakes
from rich.console import Console

from bootstrap.actions import FileSpec
from bootstrap.changes import Run
from bootstrap.plan import Plan, Step
from bootstrap.report import render_plan, render_run, summary_line
from bootstrap.runner import StepFailed
from labcore.errors import RemoteError
from labcore.remote import RunResult
from labcore.secrets import MASK


def test_each_host_runs_its_steps_in_phase_order_without_waiting_for_the_others(tmp_path):
    fleet = HostFleet()
    meet = threading.Barrier(2, timeout=5)
    object1_may_finish = threading.Event()
    order: list[str] = []

    def together(host):
        def answer(command, _stdin):
            meet.wait()  # only returns if both hosts run at the same time
            order.append(f"{host}:{command}")
            return RunResult(0)
        return answer

    def slow_last_step(command, _stdin):
        # Returns only once the controller has gone on to its next phase without object1.
        order.append(f"object1:{command}:{'alone' if object1_may_finish.wait(5) else 'waited'}")
        return RunResult(0)

    def later(command, _stdin):
        object1_may_finish.set()
        order.append(f"controller:{command}")
        return RunResult(0)

    fleet["controller"].answer("^meet$", together("controller")).answer("^install$", later)
    fleet["object1"].answer("^meet$", together("object1")).answer("^finish-base$", slow_last_step)
    plan = Plan((Step("install", "packages", ("controller",), commands=("install",)),
                 Step("meet", "base", ("controller", "object1"), commands=("meet",)),
                 Step("finish", "base", ("object1",), commands=("finish-base",))))
    lines: list[str] = []

    report = run_fakes(plan, fleet, tmp_path, progress=lines.append)

    assert report.ok, report.failure
    assert "object1:finish-base:alone" in order, "the controller waited for object1 to end phase base"
    assert order.index("controller:install") < order.index("object1:finish-base:alone")
    assert [r.phase for r in report.results if r.host == "controller"] == ["base", "packages"]
    assert "  controller: packages (2/2): 1 changed" in "\n".join(lines)
    assert all(fleet[name].closed for name in ("controller", "object1"))


def test_a_failure_reports_host_step_exit_code_and_stderr_tail_masked(tmp_path):
    fleet = HostFleet()
    object1_reported = threading.Event()
    controller_busy = threading.Event()
    stderr = "".join(f"line {i}: password {SECRET} refused\n" for i in range(30))
    fleet["object1"].answer(r"^swift-init", lambda c, s: RunResult(3 if controller_busy.wait(5) else 9, "", stderr))
    fleet["object1"].answer("^true$", ok)

    def long_step(command, _stdin):
        controller_busy.set()
        return RunResult(0 if object1_reported.wait(5) else 9)

    # The controller is busy when object1 fails: it finishes its step, and starts no other.
    fleet["controller"].answer(r"^long-step$", long_step).answer("^true$", ok)

    def progress(line):
        if line.strip().startswith("object1:") and "FAILED" in line:
            object1_reported.set()

    plan = Plan((Step("busy", "finalize", ("controller",), commands=("long-step",)),
                 Step("next", "finalize", ("controller",), commands=("next-step",)),
                 Step("start swift", "finalize", ("object1",), commands=("swift-init all start",)),
                 Step("proxy", "swift-proxy", ("controller", "object1"), commands=("true",))))

    report = run_fakes(plan, fleet, tmp_path, progress=progress)

    failure = report.failure
    assert (failure.host, failure.phase, failure.step, failure.exit_code) == ("object1", "finalize", "start swift", 3)
    assert len(failure.tail) == 20 and failure.tail[-1] == f"line 29: password {MASK} refused"
    assert "next-step" not in fleet["controller"].commands()
    assert {(r.host, r.step): r.status for r in report.results} == {
        ("controller", "proxy"): "changed", ("object1", "proxy"): "changed",
        ("controller", "busy"): "changed", ("object1", "start swift"): "failed"}
    assert report.counts()["not run"] == 1
    with pytest.raises(StepFailed) as raised:
        report.raise_for_failure()
    assert isinstance(raised.value, RemoteError) and raised.value.exit_code == 1
    assert "object1: step finalize/start swift failed (exit 3)" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_failure_stops_later_phases_everywhere(tmp_path):
    fleet = HostFleet()
    object2_failed = threading.Event()
    fleet["object2"].answer(r"^apt-get", RunResult(100, "", "E: Unable to locate package swift"))
    fleet["object1"].answer(r"^apt-get", ok)
    # The controller is still installing when object2 fails: it finishes that, and starts nothing more.
    fleet["controller"].answer(r"^apt-get", lambda c, s: RunResult(0 if object2_failed.wait(5) else 9))
    plan = Plan((Step("packages", "packages", ("controller", "object1", "object2"),
                      commands=("apt-get install -y swift",)),
                 Step("keystone", "keystone", ("controller",), commands=("keystone-manage db_sync",))))

    def progress(line):
        if line.strip().startswith("object2:") and "FAILED" in line:
            object2_failed.set()

    report = run_fakes(plan, fleet, tmp_path, progress=progress)

    assert report.failure.host == "object2" and report.failure.exit_code == 100
    assert report.failure.tail == ("E: Unable to locate package swift",)
    assert "keystone-manage db_sync" not in fleet["controller"].commands()
    assert report.counts("controller")["not run"] == 1
    assert "1 failed, 1 not run" in summary_line(report)


def test_a_lost_connection_fails_the_step_with_its_error_masked(tmp_path):
    fleet = HostFleet()

    def drop(command, _stdin):
        raise ConnectionResetError(f"connection to 172.31.0.5 reset while sending {SECRET}")

    fleet["object1"].answer(r"^apt-get", drop)
    plan = Plan((Step("packages", "packages", ("object1",), commands=("apt-get install -y rsync",)),))

    report = run_fakes(plan, fleet, tmp_path)

    assert report.failure.exit_code is None
    assert report.failure.tail == (f"ConnectionResetError: connection to 172.31.0.5 reset while sending {MASK}",)


def test_independent_phases_of_a_host_run_side_by_side_each_on_its_own_connection(tmp_path):
    fleet = HostFleet()
    both_running = threading.Barrier(2, timeout=5)
    events: list[str] = []

    def side_by_side(name):
        def answer(command, _stdin):
            both_running.wait()  # only returns if the other phase runs at the same time
            time.sleep(0.1)
            events.append(f"{name} done")
            return RunResult(0)
        return answer

    controller = fleet["controller"]
    controller.answer("^configure-mariadb$", side_by_side("services"))
    controller.answer("^apt-get install keystone$", side_by_side("service packages"))
    controller.answer("^keystone-manage db_sync$", lambda c, s: events.append("keystone") or RunResult(0))
    controller.answer("^apt-get install mariadb-server$", ok)
    plan = Plan((Step("env", "packages", ("controller",), commands=("apt-get install mariadb-server",)),
                 Step("mariadb", "controller-services", ("controller",), commands=("configure-mariadb",)),
                 Step("keystone-packages", "service-packages", ("controller",), commands=("apt-get install keystone",)),
                 Step("db-sync", "keystone", ("controller",), commands=("keystone-manage db_sync",))))

    report = run_fakes(plan, fleet, tmp_path)

    assert report.ok, report.failure
    assert sorted(events[:2]) == ["service packages done", "services done"] and events[2] == "keystone"
    assert fleet.opened.count("controller") == 2  # a phase never shares its session with another running one
    assert controller.commands()[0] == "apt-get install mariadb-server"
    # The host's time is its wall time, not the sum of its overlapping steps.
    assert report.host_seconds("controller") < sum(r.seconds for r in report.results) - 0.05


def test_a_failure_in_one_phase_lets_its_sibling_finish_its_step_and_starts_nothing_more(tmp_path):
    fleet = HostFleet()
    failed = threading.Event()
    apt_running = threading.Event()
    lines: list[str] = []

    def slow_apt(command, _stdin):
        apt_running.set()
        return RunResult(0 if failed.wait(5) else 9)  # still running when the other phase fails

    def mariadb_fails(command, _stdin):
        apt_running.wait(5)
        return RunResult(1, "", "Job for mariadb.service failed")

    fleet["controller"].answer("^apt-get install keystone$", slow_apt)
    fleet["controller"].answer("^systemctl restart mariadb$", mariadb_fails)

    def progress(line):
        lines.append(line)
        if "FAILED" in line:
            failed.set()

    plan = Plan((Step("mariadb", "controller-services", ("controller",), commands=("systemctl restart mariadb",)),
                 Step("rabbitmq", "controller-services", ("controller",), commands=("systemctl start rabbitmq",)),
                 Step("keystone-packages", "service-packages", ("controller",), commands=("apt-get install keystone",)),
                 Step("swift-packages", "service-packages", ("controller",), commands=("apt-get install swift",)),
                 Step("db-sync", "keystone", ("controller",), commands=("keystone-manage db_sync",))))

    report = run_fakes(plan, fleet, tmp_path, progress=progress)

    assert (report.failure.step, report.failure.exit_code) == ("mariadb", 1)
    assert {r.step: r.status for r in report.results} == {"mariadb": "failed", "keystone-packages": "changed"}
    assert fleet["controller"].commands() == ["systemctl restart mariadb", "apt-get install keystone"]
    assert report.counts("controller")["not run"] == 3
    assert any("controller: service-packages" in line and "(1 not started" in line for line in lines)
    assert any("controller: keystone" in line and "(1 not started" in line for line in lines)


def test_plan_and_run_output_never_show_secrets(tmp_path):
    fleet = HostFleet()
    fleet["controller"].answer(r"^keystone-manage", RunResult(1, "", f"bad password {SECRET}"))
    plan = Plan((Step("bootstrap", "keystone", ("controller",),
                      files=(FileSpec("/root/admin-openrc", f"export OS_PASSWORD={SECRET}\n", 0o600),),
                      commands=(f"keystone-manage bootstrap --bootstrap-password {SECRET}",)),))
    out = io.StringIO()
    console = Console(file=out, width=100)

    render_plan(plan, SECRETS, console)
    report = run_fakes(plan, fleet, tmp_path, progress=lambda line: console.print(line, markup=False))
    render_run(report, console)

    text = out.getvalue()
    assert SECRET not in text
    assert f"run `keystone-manage bootstrap --bootstrap-password {MASK}`" in text and f"bad password {MASK}" in text
    assert "controller: step keystone/bootstrap failed (exit 1)" in text


def test_the_fake_host_fails_a_test_on_a_command_nothing_answers(tmp_path):
    """The hosts of these tests answer only what a test says: no silent exit 0."""
    fleet = HostFleet()
    plan = Plan((Step("x", "base", ("controller",), commands=("rm -rf /srv/node",)),))

    report = run_fakes(plan, fleet, tmp_path)

    assert report.failure.tail == ("UnexpectedCommand: controller: nothing answers 'rm -rf /srv/node'",)
    with pytest.raises(UnexpectedCommand):
        FakeHost("h").run("anything")
    assert fleet["controller"].sent == [Run("rm -rf /srv/node")]
