"""The runner and files: written only when content, mode or owner differ; copies read once; a
second run changes nothing and asks each phase few questions."""

from __future__ import annotations

import pytest
from fakes import FakeHost, HostFleet
from plan_fixtures import SECRET, ok, run_fakes

from bootstrap.actions import Command, CopySpec, FileSpec
from bootstrap.changes import Write
from bootstrap.facts import FileFact
from bootstrap.plan import Plan, Step
from bootstrap.report import summary_line
from labcore.remote import RunResult


@pytest.mark.parametrize("installed, status, sent", [(True, "skipped", []),
                                                     (False, "changed", ["apt-get install -y chrony"])])
def test_commands_run_only_when_their_check_fails(tmp_path, installed, status, sent):
    fleet = HostFleet()
    controller = fleet["controller"].answer(r"^dpkg -s chrony$", RunResult(0 if installed else 1))
    controller.answer("^apt-get", ok)
    install = Command(("apt-get install -y chrony",), "dpkg -s chrony")
    plan = Plan((Step("chrony", "base", ("controller",), (install,)),))

    report = run_fakes(plan, fleet, tmp_path)

    assert [r.status for r in report.results] == [status]
    assert controller.commands() == sent


def test_a_file_is_written_only_when_content_mode_or_owner_differ(tmp_path):
    fleet = HostFleet()
    content = f"[DEFAULT]\npassword = {SECRET}\n"
    controller = fleet["controller"]
    controller.files["/etc/swift/swift.conf"] = (content.encode(), 0o644, "root:swift")  # right bytes, wrong mode
    controller.files["/etc/memcached.conf"] = (b"-l 172.31.0.4\n", 0o644, "root:root")  # just right
    plan = Plan((Step("swift config", "swift-proxy", ("controller",),
                      files=(FileSpec("/etc/swift/proxy-server.conf", content, 0o640, "root:swift"),
                             FileSpec("/etc/swift/swift.conf", content, 0o640, "root:swift"),
                             FileSpec("/etc/memcached.conf", "-l 172.31.0.4\n"))),))

    report = run_fakes(plan, fleet, tmp_path)

    assert controller.sent == [Write("/etc/swift/proxy-server.conf", content.encode(), 0o640, "root:swift"),
                               Write("/etc/swift/swift.conf", content.encode(), 0o640, "root:swift")]
    assert report.results[0].status == "changed"
    assert report.results[0].written == ("/etc/swift/proxy-server.conf", "/etc/swift/swift.conf")
    assert [c.says for c in report.results[0].changes] == [
        "write /etc/swift/proxy-server.conf (0640 root:swift): absent",
        "write /etc/swift/swift.conf (0640 root:swift): mode 0644"]


def test_a_changed_file_runs_the_steps_commands_even_if_their_check_passes(tmp_path):
    fleet = HostFleet()
    controller = fleet["controller"].answer(r"^systemctl is-active memcached$", ok).answer("^systemctl restart", ok)
    plan = Plan((Step("memcached", "controller-services", ("controller",),
                      files=(FileSpec("/etc/memcached.conf", "-l 172.31.0.4\n"),),
                      commands=("systemctl restart memcached",), check="systemctl is-active memcached"),))

    report = run_fakes(plan, fleet, tmp_path)

    assert controller.commands() == ["systemctl restart memcached"]
    assert report.results[0].status == "changed"


def test_a_copy_reads_its_source_once_for_every_host_and_writes_only_where_it_differs(tmp_path):
    fleet = HostFleet()
    ring = bytes(range(256)) * 40 + b"\x00\xff\n\r"
    fleet["controller"].files["/etc/swift/object.ring.gz"] = (ring, 0o644, "root:swift")
    fleet["object2"].files["/etc/swift/object.ring.gz"] = (ring, 0o644, "root:swift")
    plan = Plan((Step("rings", "swift-rings", ("object1", "object2"),
                      copies=(CopySpec("controller", "/etc/swift/object.ring.gz", owner="root:swift"),)),))

    report = run_fakes(plan, fleet, tmp_path)

    assert report.ok, report.failure
    assert fleet["object1"].sent == [Write("/etc/swift/object.ring.gz", ring, 0o644, "root:swift")]
    assert fleet["object2"].sent == []  # already there, byte for byte
    assert fleet["controller"].reads == ["/etc/swift/object.ring.gz"]  # read once for both
    assert {r.host: r.status for r in report.results} == {"object1": "changed", "object2": "skipped"}


def test_a_copy_fails_clearly_when_the_source_file_is_missing(tmp_path):
    fleet = HostFleet()
    copy = CopySpec("controller", "/etc/swift/object.ring.gz")
    plan = Plan((Step("rings", "swift-rings", ("object1",), (copy,)),))

    report = run_fakes(plan, fleet, tmp_path)

    assert report.failure.host == "object1" and report.failure.exit_code == 1
    assert report.failure.tail[0] == "cannot read /etc/swift/object.ring.gz on controller"
    assert fleet["object1"].sent == []


class Marks:
    """`touch /done/X` and `test -e /done/X` on a FakeHost, as a shell would answer them."""

    def __init__(self, host: FakeHost):
        self.done: set[str] = set()
        host.answer(r"^touch /done/", lambda c, s: self.done.add(c.split()[-1]) or RunResult(0))
        host.answer(r"^test -e /done/", lambda c, s: RunResult(0 if c.split()[-1] in self.done else 1))


def _stateful_plan() -> Plan:
    return Plan((
        Step("hosts", "base", ("controller", "object1", "object2"), files=(FileSpec("/etc/motd", "lab\n"),)),
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


def test_a_second_run_changes_nothing_and_asks_each_phase_once(tmp_path):
    fleet = HostFleet()
    for name in ("controller", "object1", "object2"):
        Marks(fleet[name])

    first = run_fakes(_stateful_plan(), fleet, tmp_path)
    trips = {name: len(fleet[name].asked) for name in ("controller", "object1", "object2")}
    second = run_fakes(_stateful_plan(), fleet, tmp_path)

    assert first.ok and second.ok
    assert first.counts()["changed"] == 10
    assert fleet["object2"].files["/etc/swift/object.ring.gz"] == (b"ring\n", 0o644, "root:swift")
    assert second.counts()["changed"] == 0 and second.counts()["skipped"] == 10
    assert summary_line(second).startswith("0 changed, 10 skipped, 0 ok, 0 failed")
    # Per phase and host: the first step's facts, then those of every step after it at once
    # (controller: base 1 + 1, keystone 1, swift-rings 1; storage nodes: base 1 + 1, finalize 1).
    assert {name: len(fleet[name].asked) - trips[name] for name in trips} == {"controller": 4, "object1": 3,
                                                                            "object2": 3}


def test_facts_are_asked_for_all_steps_ahead_after_an_unchanged_step_and_for_one_after_a_change(tmp_path):
    fleet = HostFleet()
    plan = Plan(tuple(Step(f"s{i}", "base", ("controller",), (FileSpec(f"/etc/f{i}", "x\n"),)) for i in range(4)))
    fleet["controller"].files["/etc/f0"] = (b"x\n", 0o644, "root:root")

    run_fakes(plan, fleet, tmp_path)  # f0 is right, f1, f2, f3 are written
    run_fakes(plan, fleet, tmp_path)  # nothing to do

    asked = [[f.path for f in facts] for facts in fleet["controller"].asked]
    assert asked == [["/etc/f0"], ["/etc/f1", "/etc/f2", "/etc/f3"], ["/etc/f2"], ["/etc/f3"],
                     ["/etc/f0"], ["/etc/f1", "/etc/f2", "/etc/f3"]]
    assert all(isinstance(f, FileFact) for facts in fleet["controller"].asked for f in facts)


