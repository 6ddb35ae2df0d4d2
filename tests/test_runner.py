"""The runner: each host its steps in phase order, hosts in parallel, copies after their source, files written only when they differ, failures stop the run."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shlex
import stat
import threading
import time

import pytest
from fakes import FakeFleet, FakeRemote
from rich.console import Console

from bootstrap.plan import CopySpec, FileSpec, Plan, Step
from bootstrap.report import render_plan, render_run, summary_line
from bootstrap.runner import StepFailed, run_plan
from labcore.errors import RemoteError
from labcore.inventory import Inventory, NodeRecord
from labcore.remote import RunResult
from labcore.secrets import MASK, Secrets

SECRET = "5ecret-5ecret-5ecret"
SECRETS = Secrets({"admin_pass": SECRET})


def node(name: str, role: str, ip: str) -> NodeRecord:
    return NodeRecord(name=name, role=role, instance_id=f"i-{name}", instance_type="t3.medium", az="ap-northeast-2a",
                      private_ip=ip, ssh_host=ip, ssh_user="ubuntu")


INVENTORY = Inventory(lab="rocky-lab", target="sim", region="ap-northeast-2", os="debian-12", release="rocky",
                      subnet_cidr="172.31.0.0/20", key_file="k", known_hosts="h",
                      nodes=[node("controller", "controller", "172.31.0.4"), node("object1", "object", "172.31.0.5"),
                             node("object2", "object", "172.31.0.6")])


def run(plan: Plan, fleet: FakeFleet, tmp_path, progress=None):
    return run_plan(plan, INVENTORY, fleet, SECRETS, log_dir=tmp_path / "logs",
                    progress=progress or (lambda line: None))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def writes(remote: FakeRemote) -> list[tuple[str, bytes]]:
    """(command, decoded content) of every file write the runner sent to a host."""
    return [(c, base64.b64decode(s)) for c, s in zip(remote.commands, remote.stdins) if "base64 -d" in c]


class StatefulHost:
    """A tiny host: files with content, mode and owner, and marker files for checks; answers like a shell would."""

    def __init__(self, remote: FakeRemote):
        self.files: dict[str, tuple[bytes, str, str]] = {}
        remote.answer(r"^h=\$\(sha256sum -- (\S+)\)", self._stat)
        remote.answer(r"base64 -d", self._write)
        remote.answer(r"^test -e ", lambda c, _: RunResult(0 if shlex.split(c)[2] in self.files else 1))
        remote.answer(r"^touch ", self._touch)

    def _stat(self, command, _stdin):
        path = shlex.split(re.search(r"sha256sum -- (\S+)\)", command).group(1))[0]
        if path not in self.files:
            return RunResult(1, "", f"sha256sum: {path}: No such file or directory")
        data, mode, owner = self.files[path]
        return RunResult(0, f"{sha(data)} {mode} {owner}\n")

    def _write(self, command, stdin):
        path = shlex.split(re.search(r'mv -f -- "\$t" (.+)$', command).group(1))[0]
        mode = re.search(r"chmod 0?(\d+)", command).group(1)
        owner = shlex.split(re.search(r"chown (\S+)", command).group(1))[0]
        self.files[path] = (base64.b64decode(stdin), mode, owner)
        return RunResult(0)

    def _touch(self, command, _stdin):
        self.files[shlex.split(command)[1]] = (b"", "644", "root:root")
        return RunResult(0)


def test_each_host_runs_its_steps_in_phase_order_without_waiting_for_the_others(tmp_path):
    fleet = FakeFleet()
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

    fleet["controller"].answer("^meet$", together("controller"))
    fleet["object1"].answer("^meet$", together("object1"))
    fleet["object1"].answer("^finish-base$", slow_last_step)
    fleet["controller"].answer("^install$", later)
    plan = Plan((Step("install", "packages", ("controller",), commands=("install",)),
                 Step("meet", "base", ("controller", "object1"), commands=("meet",)),
                 Step("finish", "base", ("object1",), commands=("finish-base",))))
    lines: list[str] = []

    report = run(plan, fleet, tmp_path, progress=lines.append)

    assert report.ok, report.failure
    assert "object1:finish-base:alone" in order, "the controller waited for object1 to end phase base"
    assert order.index("controller:install") < order.index("object1:finish-base:alone")
    assert [r.phase for r in report.results if r.host == "controller"] == ["base", "packages"]
    assert "  controller: packages (2/2): 1 changed" in "\n".join(lines)
    assert all(fleet[name].closed for name in ("controller", "object1"))


def _ring_plan(build: str = "build-ring") -> Plan:
    return Plan((Step("build", "swift-rings", ("controller",), commands=(build,)),
                 Step("copy", "finalize", ("object1",),
                      copies=(CopySpec("controller", "/etc/swift/object.ring.gz"),), commands=("start-servers",)),
                 Step("proxy", "finalize", ("controller",), commands=("start-proxy",))))


def test_a_copy_waits_for_what_its_source_host_does_before_it_and_no_more(tmp_path):
    fleet = FakeFleet()
    events: list[str] = []
    copied = threading.Event()

    def build(command, _stdin):
        time.sleep(0.3)  # object1 has nothing else to do: it would read now if it did not wait
        events.append("ring built")
        return RunResult(0)

    def read(command, _stdin):
        events.append("ring read")
        copied.set()
        return RunResult(0, base64.b64encode(b"ring").decode())

    def proxy(command, _stdin):
        # The proxy comes after the copy in the plan: object1 must not wait for it.
        events.append("proxy " + ("after the copy" if copied.wait(5) else "before the copy"))
        return RunResult(0)

    fleet["controller"].answer("^build-ring$", build)
    fleet["controller"].answer(r"^base64 -- ", read)
    fleet["controller"].answer("^start-proxy$", proxy)

    report = run(_ring_plan(), fleet, tmp_path)

    assert report.ok, report.failure
    assert events == ["ring built", "ring read", "proxy after the copy"]
    assert [data for _, data in writes(fleet["object1"])] == [b"ring"]


def test_a_failing_source_stops_the_host_waiting_for_its_copy(tmp_path):
    fleet = FakeFleet()
    fleet["controller"].answer("^build-ring$", RunResult(2, "", "swift-ring-builder: no devices"))
    lines: list[str] = []

    report = run(_ring_plan(), fleet, tmp_path, progress=lines.append)

    assert (report.failure.host, report.failure.step) == ("controller", "build")
    assert fleet["controller"].ran("base64") == [] and fleet["object1"].commands == []
    assert report.counts("object1")["not run"] == 1 and report.counts("controller")["not run"] == 1
    assert "  object1: finalize (2/2): nothing run in 0.0s  (1 not started: stopping after a failure)" in lines


def test_step_skipped_when_check_passes(tmp_path):
    fleet = FakeFleet()
    fleet["controller"].answer(r"^dpkg -s chrony", RunResult(0, "Status: install ok installed"))
    plan = Plan((Step("chrony", "base", ("controller",), commands=("apt-get install -y chrony",),
                      check="dpkg -s chrony"),))

    report = run(plan, fleet, tmp_path)

    assert [r.status for r in report.results] == ["skipped"]
    assert fleet["controller"].ran("apt-get") == []


def test_step_runs_commands_when_check_fails(tmp_path):
    fleet = FakeFleet()
    fleet["controller"].answer(r"^dpkg -s chrony", RunResult(1, "", "package 'chrony' is not installed"))
    plan = Plan((Step("chrony", "base", ("controller",), commands=("apt-get install -y chrony",),
                      check="dpkg -s chrony"),))

    report = run(plan, fleet, tmp_path)

    assert [r.status for r in report.results] == ["changed"]
    assert fleet["controller"].ran("apt-get") == ["apt-get install -y chrony"]


def test_unchanged_file_is_not_rewritten(tmp_path):
    fleet = FakeFleet()
    content = "[mysqld]\nbind-address = 172.31.0.4\n"
    fleet["controller"].answer(r"sha256sum -- /etc/mysql/mariadb.conf.d/99-openstack.cnf",
                               RunResult(0, f"{sha(content.encode())} 644 root:root\n"))
    plan = Plan((Step("mariadb config", "controller-services", ("controller",),
                      files=(FileSpec("/etc/mysql/mariadb.conf.d/99-openstack.cnf", content),)),))

    report = run(plan, fleet, tmp_path)

    assert writes(fleet["controller"]) == []
    assert [r.status for r in report.results] == ["ok"]


def test_changed_file_is_written_with_mode_and_owner(tmp_path):
    fleet = FakeFleet()
    content = f"[DEFAULT]\npassword = {SECRET}\n"
    # proxy-server.conf does not exist yet; swift.conf has the right content but a wrong mode.
    fleet["controller"].answer(r"sha256sum -- /etc/swift/swift.conf",
                               RunResult(0, f"{sha(content.encode())} 644 root:swift\n"))
    plan = Plan((Step("swift config", "swift-proxy", ("controller",),
                      files=(FileSpec("/etc/swift/proxy-server.conf", content, 0o640, "root:swift"),
                             FileSpec("/etc/swift/swift.conf", content, 0o640, "root:swift"))),))

    report = run(plan, fleet, tmp_path)

    written = writes(fleet["controller"])
    assert [data for _, data in written] == [content.encode(), content.encode()]
    for command, _ in written:
        assert "chmod 0640" in command and "chown root:swift" in command
    assert [c.endswith(path) for (c, _), path in zip(written, ("/etc/swift/proxy-server.conf",
                                                               "/etc/swift/swift.conf"))] == [True, True]
    assert report.results[0].status == "changed"
    assert report.results[0].written == ("/etc/swift/proxy-server.conf", "/etc/swift/swift.conf")


def test_changed_file_reruns_commands_even_if_check_passes(tmp_path):
    fleet = FakeFleet()
    fleet["controller"].answer(r"^systemctl is-active memcached", RunResult(0, "active"))
    plan = Plan((Step("memcached", "controller-services", ("controller",),
                      files=(FileSpec("/etc/memcached.conf", "-l 172.31.0.4\n"),),
                      commands=("systemctl restart memcached",), check="systemctl is-active memcached"),))

    report = run(plan, fleet, tmp_path)

    assert fleet["controller"].ran("restart memcached") == ["systemctl restart memcached"]
    assert report.results[0].status == "changed"


def test_copy_reads_source_and_writes_destination(tmp_path):
    fleet = FakeFleet()
    ring = bytes(range(256)) * 40 + b"\x00\xff\n\r"
    fleet["controller"].answer(r"^base64 -- /etc/swift/object\.ring\.gz$",
                               RunResult(0, base64.encodebytes(ring).decode()))
    fleet["object2"].answer(r"sha256sum -- /etc/swift/object\.ring\.gz", RunResult(0, f"{sha(ring)} 644 root:swift"))
    plan = Plan((Step("rings", "swift-rings", ("object1", "object2"),
                      copies=(CopySpec("controller", "/etc/swift/object.ring.gz", owner="root:swift"),)),))

    report = run(plan, fleet, tmp_path)

    assert report.ok, report.failure
    assert [data for _, data in writes(fleet["object1"])] == [ring]
    assert writes(fleet["object2"]) == []  # already there, byte for byte
    assert len(fleet["controller"].ran("base64 -- /etc/swift/object.ring.gz")) == 1  # read once for both
    assert {r.host: r.status for r in report.results} == {"object1": "changed", "object2": "ok"}


def test_copy_fails_clearly_when_the_source_file_is_missing(tmp_path):
    fleet = FakeFleet()
    fleet["controller"].answer(r"^base64 -- ", RunResult(1, "", "base64: /etc/swift/object.ring.gz: No such file"))
    plan = Plan((Step("rings", "swift-rings", ("object1",),
                      copies=(CopySpec("controller", "/etc/swift/object.ring.gz"),)),))

    report = run(plan, fleet, tmp_path)

    assert report.failure.host == "object1" and report.failure.exit_code == 1
    assert report.failure.tail[0] == "cannot read /etc/swift/object.ring.gz on controller"
    assert writes(fleet["object1"]) == []


def test_failure_reports_host_step_exit_code_and_stderr_tail(tmp_path):
    fleet = FakeFleet()
    object1_reported = threading.Event()
    controller_busy = threading.Event()
    stderr = "".join(f"line {i}: password {SECRET} refused\n" for i in range(30))
    fleet["object1"].answer(r"^swift-init", lambda c, s: RunResult(3 if controller_busy.wait(5) else 9, "", stderr))

    def long_step(command, _stdin):
        controller_busy.set()
        return RunResult(0 if object1_reported.wait(5) else 9)

    # The controller is busy when object1 fails: it finishes its step, and starts no other.
    fleet["controller"].answer(r"^long-step$", long_step)

    def progress(line):
        if line.strip().startswith("object1:") and "FAILED" in line:
            object1_reported.set()

    plan = Plan((Step("busy", "finalize", ("controller",), commands=("long-step",)),
                 Step("next", "finalize", ("controller",), commands=("next-step",)),
                 Step("start swift", "finalize", ("object1",), commands=("swift-init all start",)),
                 Step("proxy", "swift-proxy", ("controller", "object1"), commands=("true",))))

    report = run(plan, fleet, tmp_path, progress=progress)

    assert not report.ok
    failure = report.failure
    assert (failure.host, failure.phase, failure.step, failure.exit_code) == ("object1", "finalize", "start swift", 3)
    assert len(failure.tail) == 20
    assert failure.tail[-1] == f"line 29: password {MASK} refused"
    assert fleet["controller"].ran("next-step") == []
    assert {(r.host, r.step): r.status for r in report.results} == {
        ("controller", "proxy"): "changed", ("object1", "proxy"): "changed",
        ("controller", "busy"): "changed", ("object1", "start swift"): "failed"}
    assert report.counts()["not run"] == 1
    with pytest.raises(StepFailed) as raised:
        report.raise_for_failure()
    assert isinstance(raised.value, RemoteError) and raised.value.exit_code == 1
    assert "object1: step finalize/start swift failed (exit 3)" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_failure_stops_later_phases(tmp_path):
    fleet = FakeFleet()
    object2_failed = threading.Event()
    fleet["object2"].answer(r"^apt-get", RunResult(100, "", "E: Unable to locate package swift"))
    # The controller is still installing when object2 fails: it finishes that, and starts nothing more.
    fleet["controller"].answer(r"^apt-get", lambda c, s: RunResult(0 if object2_failed.wait(5) else 9))
    plan = Plan((Step("packages", "packages", ("controller", "object1", "object2"),
                      commands=("apt-get install -y swift",)),
                 Step("keystone", "keystone", ("controller",), commands=("keystone-manage db_sync",))))

    def progress(line):
        if line.strip().startswith("object2:") and "FAILED" in line:
            object2_failed.set()

    report = run(plan, fleet, tmp_path, progress=progress)

    assert report.failure.host == "object2" and report.failure.exit_code == 100
    assert report.failure.tail == ("E: Unable to locate package swift",)
    assert fleet["controller"].ran("keystone-manage") == []
    assert report.counts("controller")["not run"] == 1
    assert "1 failed, 1 not run" in summary_line(report)


def test_lost_connection_fails_the_step_with_its_error(tmp_path):
    fleet = FakeFleet()

    def drop(command, _stdin):
        raise ConnectionResetError(f"connection to 172.31.0.5 reset while sending {SECRET}")

    fleet["object1"].answer(r"^apt-get", drop)
    plan = Plan((Step("packages", "packages", ("object1",), commands=("apt-get install -y rsync",)),))

    report = run(plan, fleet, tmp_path)

    assert report.failure.exit_code is None
    assert report.failure.tail == (f"ConnectionResetError: connection to 172.31.0.5 reset while sending {MASK}",)


def _stateful_plan() -> Plan:
    return Plan((
        Step("hosts", "base", ("controller", "object1", "object2"),
             files=(FileSpec("/etc/hosts", "172.31.0.4 controller\n"),)),
        Step("chrony", "base", ("controller", "object1", "object2"), commands=("touch /done/chrony",),
             check="test -e /done/chrony"),
        Step("keystone", "keystone", ("controller",),
             files=(FileSpec("/etc/keystone/keystone.conf", f"connection = mysql+pymysql://keystone:{SECRET}@c/k\n",
                             0o640, "root:keystone"),),
             commands=("touch /done/keystone",), check="test -e /done/keystone"),
        Step("ring", "swift-rings", ("controller",), files=(FileSpec("/etc/swift/object.ring.gz", "ring\n"),)),
        Step("rings", "finalize", ("object1", "object2"),
             copies=(CopySpec("controller", "/etc/swift/object.ring.gz", 0o644, "root:swift"),),
             commands=("touch /done/rings",), check="test -e /done/rings"),
    ))


def test_second_run_reports_zero_changed(tmp_path):
    fleet = FakeFleet()
    states = {name: StatefulHost(fleet[name]) for name in ("controller", "object1", "object2")}
    fleet["controller"].answer(r"^base64 -- /etc/swift/object\.ring\.gz$",
                               lambda c, s: RunResult(0, base64.b64encode(states["controller"].files[
                                   "/etc/swift/object.ring.gz"][0]).decode()))

    first = run(_stateful_plan(), fleet, tmp_path)
    second = run(_stateful_plan(), fleet, tmp_path)

    assert first.ok and second.ok
    assert first.counts()["changed"] == 10
    assert states["object2"].files["/etc/swift/object.ring.gz"] == (b"ring\n", "644", "root:swift")
    assert second.counts()["changed"] == 0
    assert second.counts()["skipped"] == 6 and second.counts()["ok"] == 4
    assert summary_line(second).startswith("0 changed, 6 skipped, 4 ok, 0 failed")


def test_logs_are_written_per_host_and_masked(tmp_path):
    fleet = FakeFleet()
    fleet["controller"].answer(r"^keystone-manage", RunResult(0, f"bootstrapped admin with {SECRET}",
                                                              f"warning: {SECRET} is weak"))
    plan = Plan((Step("bootstrap", "keystone", ("controller",),
                      files=(FileSpec("/root/admin-openrc", f"export OS_PASSWORD={SECRET}\n", 0o600),),
                      commands=(f"keystone-manage bootstrap --bootstrap-password {SECRET}",)),
                 Step("rsync", "swift-storage", ("object1",), commands=("systemctl restart rsync",))))

    run(plan, fleet, tmp_path)
    run(plan, fleet, tmp_path)

    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["controller.log", "object1.log"]
    controller = (logs / "controller.log").read_text()
    assert SECRET not in controller and SECRET not in (logs / "object1.log").read_text()
    assert f"keystone-manage bootstrap --bootstrap-password {MASK}" in controller
    assert f"warning: {MASK} is weak" in controller and "exit 0" in controller
    assert "wrote /root/admin-openrc" in controller
    assert controller.count("===== lab install") == 2  # appended per run, each with a header
    assert stat.S_IMODE((logs / "controller.log").stat().st_mode) == 0o600


def test_plan_and_run_output_never_show_secrets(tmp_path):
    fleet = FakeFleet()
    fleet["controller"].answer(r"^keystone-manage", RunResult(1, "", f"bad password {SECRET}"))
    plan = Plan((Step("bootstrap", "keystone", ("controller",),
                      files=(FileSpec("/root/admin-openrc", f"export OS_PASSWORD={SECRET}\n", 0o600),),
                      commands=(f"keystone-manage bootstrap --bootstrap-password {SECRET}",)),))
    out = io.StringIO()
    console = Console(file=out, width=100)

    render_plan(plan, SECRETS, console)
    report = run(plan, fleet, tmp_path, progress=lambda line: console.print(line, markup=False))
    render_run(report, console)

    text = out.getvalue()
    assert SECRET not in text
    assert f"--bootstrap-password {MASK}" in text and f"bad password {MASK}" in text
    assert "controller: step keystone/bootstrap failed (exit 1)" in text


def test_independent_phases_of_a_host_run_side_by_side_and_a_phase_waits_for_what_it_needs(tmp_path):
    fleet = FakeFleet()
    connections: list[str] = []

    def factory(node):
        connections.append(node.name)
        return fleet(node)

    both_running = threading.Barrier(2, timeout=5)
    events: list[str] = []

    def side_by_side(name):
        def answer(command, _stdin):
            both_running.wait()  # only returns if the other phase runs at the same time
            time.sleep(0.1)
            events.append(f"{name} done")
            return RunResult(0)
        return answer

    fleet["controller"].answer("^configure-mariadb$", side_by_side("services"))
    fleet["controller"].answer("^apt-get install keystone$", side_by_side("service packages"))
    fleet["controller"].answer("^keystone-manage db_sync$", lambda c, s: events.append("keystone") or RunResult(0))
    plan = Plan((Step("env", "packages", ("controller",), commands=("apt-get install mariadb-server",)),
                 Step("mariadb", "controller-services", ("controller",), commands=("configure-mariadb",)),
                 Step("keystone-packages", "service-packages", ("controller",), commands=("apt-get install keystone",)),
                 Step("db-sync", "keystone", ("controller",), commands=("keystone-manage db_sync",))))

    report = run_plan(plan, INVENTORY, factory, SECRETS, log_dir=tmp_path / "logs", progress=lambda line: None)

    assert report.ok, report.failure
    assert sorted(events[:2]) == ["service packages done", "services done"] and events[2] == "keystone"
    assert connections.count("controller") == 2  # a phase never shares its connection with another
    assert fleet["controller"].commands[0] == "apt-get install mariadb-server"
    # The host's time is its wall time, not the sum of its overlapping steps.
    assert report.host_seconds("controller") < sum(r.seconds for r in report.results) - 0.05
    log = (tmp_path / "logs" / "controller.log").read_text()
    assert "] controller-services $ configure-mariadb" in log and "] service-packages $ apt-get install keystone" in log


def test_a_failure_in_one_phase_lets_its_sibling_finish_its_step_and_starts_nothing_more(tmp_path):
    fleet = FakeFleet()
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

    report = run(plan, fleet, tmp_path, progress=progress)

    assert (report.failure.step, report.failure.exit_code) == ("mariadb", 1)
    assert {r.step: r.status for r in report.results} == {"mariadb": "failed", "keystone-packages": "changed"}
    assert fleet["controller"].ran("rabbitmq|apt-get install swift|keystone-manage") == []
    assert report.counts("controller")["not run"] == 3
    assert any("controller: service-packages" in line and "(1 not started" in line for line in lines)
    assert any("controller: keystone" in line and "(1 not started" in line for line in lines)
