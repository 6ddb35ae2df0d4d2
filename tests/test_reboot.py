"""`lab reboot`: one RebootInstances for the nodes, then each host waited for until it has booted again."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from lab import reboot
from labcore.errors import RemoteError
from labcore.inventory import NodeRecord
from labcore.remote import RunResult


def node(name: str) -> NodeRecord:
    return NodeRecord(name=name, role="object", instance_id=f"i-{name}", instance_type="t3.medium",
                      az="ap-northeast-2a", private_ip="10.0.0.5", ssh_host="10.0.0.5", ssh_user="admin")


class Host:
    """A host whose boot marker changes once EC2 has rebooted it and `down_polls` probes have failed."""

    def __init__(self, name: str, down_polls: int = 2, comes_back: bool = True, booting: tuple[str, ...] = ()):
        self.name, self.down_polls, self.comes_back = name, down_polls, comes_back
        self.boots, self.rebooting = 1, False
        self.booting = list(booting)  # what systemd says before "running", one answer per question
        self.asked_state = 0
        self.lock = threading.Lock()

    def reboot(self) -> None:
        with self.lock:
            self.rebooting = True

    def answer(self, command: str) -> RunResult:
        with self.lock:
            if command == reboot.SETTLED_COMMAND:
                self.asked_state += 1
                return RunResult(0, (self.booting.pop(0) if self.booting else "running") + "\n")
            if self.rebooting:
                if self.down_polls > 0 or not self.comes_back:
                    self.down_polls -= 1
                    raise RemoteError(f"{self.name}: SSH failed: connection refused")
                self.rebooting, self.boots = False, self.boots + 1
            return RunResult(0, f"boot-id-same\n{1000 * self.boots}\n")


class Connection:
    def __init__(self, host: Host):
        self.host, self.name, self.closed = host, host.name, False

    def run(self, command, *, sudo=True, stdin=None, timeout=None):
        return self.host.answer(command)

    def close(self):
        self.closed = True


class FakeEc2:
    def __init__(self, hosts: dict[str, Host]):
        self.hosts, self.calls = hosts, []

    def reboot_instances(self, InstanceIds):
        self.calls.append(list(InstanceIds))
        for instance_id in InstanceIds:
            self.hosts[instance_id.removeprefix("i-")].reboot()
        return {}


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(reboot, "POLL_SECONDS", 0.0)


def test_nodes_are_rebooted_in_one_call_and_each_waited_for_until_it_booted_again():
    hosts = {"object1": Host("object1", down_polls=3), "object2": Host("object2", down_polls=0)}
    ec2, lines = FakeEc2(hosts), []
    done = reboot.reboot_nodes(ec2, [node("object1"), node("object2")], lambda n: Connection(hosts[n.name]),
                               progress=lines.append)
    assert ec2.calls == [["i-object1", "i-object2"]]
    assert [h.boots for h in hosts.values()] == [2, 2]
    assert [(d.node, d.state) for d in done] == [("object1", "running"), ("object2", "running")]
    assert any("rebooting object1, object2" in line for line in lines)
    assert any(line.startswith("  object1: back after") for line in lines)


def test_a_host_that_does_not_answer_before_is_not_rebooted(monkeypatch):
    hosts = {"object1": Host("object1")}
    hosts["object1"].rebooting, hosts["object1"].comes_back = True, False  # down already
    ec2 = FakeEc2(hosts)
    with pytest.raises(RemoteError, match="object1 .* does not answer on SSH"):
        reboot.reboot_nodes(ec2, [node("object1")], lambda n: Connection(hosts[n.name]), progress=lambda _: None)
    assert ec2.calls == []


def test_a_host_that_never_comes_back_fails_naming_it_and_what_to_do(monkeypatch):
    monkeypatch.setattr(reboot, "BACK_TIMEOUT_SECONDS", 0.05)
    hosts = {"object1": Host("object1", comes_back=False)}
    with pytest.raises(RemoteError, match=r"object1 .* did not come back .* `lab reboot object1` again"):
        reboot.reboot_nodes(FakeEc2(hosts), [node("object1")], lambda n: Connection(hosts[n.name]),
                            progress=lambda _: None)


def test_the_marker_changes_when_only_pid_1_restarted_as_in_a_container():
    """On the twin the kernel (and its boot id) stays: PID 1's start time is what tells a reboot."""
    host = Host("object1", down_polls=0)
    before = reboot.boot_marker(Connection(host))
    host.reboot()
    after = reboot.boot_marker(Connection(host))
    assert before.split()[0] == after.split()[0] and before != after


def test_the_settle_wait_asks_systemd_until_it_is_neither_initializing_nor_starting():
    """`is-system-running --wait` needs systemd 240 (Ubuntu 18.04 has 237): the lab asks again."""
    assert "--wait" not in reboot.SETTLED_COMMAND
    hosts = {"object1": Host("object1", down_polls=0, booting=("initializing", "starting", "starting"))}
    (done,) = reboot.reboot_nodes(FakeEc2(hosts), [node("object1")], lambda n: Connection(hosts[n.name]),
                                  progress=lambda _: None)
    assert done.state == "running" and hosts["object1"].asked_state == 4


def test_a_degraded_host_is_settled_and_said_with_where_to_look():
    hosts = {"object1": Host("object1", down_polls=0, booting=("starting", "degraded"))}
    lines = []
    (done,) = reboot.reboot_nodes(FakeEc2(hosts), [node("object1")], lambda n: Connection(hosts[n.name]),
                                  progress=lines.append)
    assert done.state == "degraded"
    assert any("systemd says degraded: `systemctl --failed` names the units" in line for line in lines)


def test_the_settle_wait_is_bounded_and_says_every_30_s_what_systemd_says(monkeypatch):
    now = [0.0]  # time moves only when the wait sleeps
    monkeypatch.setattr(reboot, "time", SimpleNamespace(monotonic=lambda: now[0],
                                                        sleep=lambda s: now.__setitem__(0, now[0] + s)))
    monkeypatch.setattr(reboot, "POLL_SECONDS", 3.0)
    host, lines = Host("object1", booting=("starting",) * 1000), []
    state = reboot.settle(node("object1"), Connection(host), lines.append)
    assert state == "starting"
    assert reboot.SETTLE_TIMEOUT_SECONDS <= now[0] < reboot.SETTLE_TIMEOUT_SECONDS + 3.0 + 1e-9
    assert len(lines) == 9 and lines[0] == "  object1: systemd says starting (30 s, at most 300 s)"
