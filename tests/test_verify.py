"""lab verify: which checks run where, and how their answers become a pass/fail table."""

from __future__ import annotations

import io

from fakes import FakeFleet
from rich.console import Console

from bootstrap.report import render_checks
from bootstrap.verify import run_checks, verify_checks
from labcore.inventory import Inventory, NodeRecord, VolumeRecord
from labcore.remote import RunResult
from labcore.secrets import MASK, Secrets

SECRET = "0123456789abcdef0123456789abcdef"
SECRETS = Secrets({"admin_pass": SECRET})
IPS = {"controller": "172.31.0.4", "object1": "172.31.0.5", "object2": "172.31.0.6"}


def node(name: str, role: str, volumes: tuple[str, ...] = ()) -> NodeRecord:
    return NodeRecord(name=name, role=role, instance_id=f"i-{name}", instance_type="t3.medium", az="ap-northeast-2a",
                      private_ip=IPS[name], ssh_host=IPS[name], ssh_user="ubuntu",
                      volumes=[VolumeRecord(name=v, volume_id=f"vol-{name}{v}", size_gb=10, device=f"/dev/sd{c}")
                               for v, c in zip(volumes, "fg")])


INVENTORY = Inventory(lab="rocky-lab", target="sim", region="ap-northeast-2", os="debian-12", release="rocky",
                      subnet_cidr="172.31.0.0/20", key_file="k", known_hosts="h",
                      nodes=[node("controller", "controller"), node("object1", "object", ("sdb", "sdc")),
                             node("object2", "object", ("sdb", "sdc"))])


def healthy_lab() -> FakeFleet:
    """Answers the way a working lab does."""
    fleet = FakeFleet()
    for name in IPS:
        fleet[name].answer(r"^ping ", RunResult(0, "64 bytes: icmp_seq=1 ttl=64 time=0.05 ms\n"
                                                   "1 packets transmitted, 1 received, 0% packet loss\n"))
        fleet[name].answer(r"chronyc -n sources", RunResult(0, "MS Name/IP address   Stratum Poll Reach\n"
                                                              "===================================\n"
                                                              "^* 172.31.0.4   3   6   377    35   +12us[+15us]\n"))
        fleet[name].answer(r"^findmnt -n -o FSTYPE,TARGET /srv/node/(\w+)",
                           lambda c, s: RunResult(0, f"xfs    {c.split()[-1]}\n"))
        fleet[name].answer(r"^findmnt --verify", RunResult(0, "Success, no errors or warnings detected\n"))
    controller = fleet["controller"]
    controller.answer(r"openstack token issue", RunResult(0, "2024-05-01T12:00:00+0000\n"))
    controller.answer(r"swift stat", RunResult(0, "Account: AUTH_1234\nContainers: 0\nObjects: 0\n"))
    controller.answer(r"openstack object save", RunResult(0, "round trip ok: 1 MiB object, sha256 ab12\n"))
    return fleet


def test_checks_for_a_three_node_lab():
    checks = verify_checks(INVENTORY)
    pings = {(c.host, c.command) for c in checks if c.name.startswith("ping")}
    assert pings == {(a, f"ping -c 1 -W 2 {IPS[b]}") for a in IPS for b in IPS if a != b}
    chrony = [c for c in checks if "chronyc" in c.command]
    assert sorted(c.host for c in chrony) == ["object1", "object2"]
    # A follower that missed the controller at start must not wait a 128 s poll to find it.
    assert all(c.command.startswith("chronyc burst 4/4") for c in chrony)
    tokens = [c for c in checks if "token issue" in c.command]
    assert [(c.host, c.command.split(" && ")[0]) for c in tokens] == [("controller", ". /root/admin-openrc"),
                                                                     ("controller", ". /root/demo-openrc")]
    swift = [c for c in checks if "swift stat" in c.command or "openstack object" in c.command]
    assert [c.host for c in swift] == ["controller", "controller"]
    devices = [(c.host, c.command) for c in checks if c.command.startswith("findmnt -n")]
    assert devices == [(n, f"findmnt -n -o FSTYPE,TARGET /srv/node/{d}") for n in ("object1", "object2")
                       for d in ("sdb", "sdc")]
    assert sorted(c.host for c in checks if "findmnt --verify" in c.command) == ["object1", "object2"]


def test_round_trip_uses_a_random_container_and_cleans_it_up():
    script = next(c.command for c in verify_checks(INVENTORY) if "openstack object save" in c.command)
    assert "/dev/urandom" in script and "trap cleanup EXIT" in script
    assert "openstack container delete --recursive" in script
    assert script.index("openstack object create") < script.index("openstack object list") < script.index(
        "openstack object save") < script.index("sha256sum")


def test_all_checks_pass_on_a_healthy_lab():
    results = run_checks(verify_checks(INVENTORY), healthy_lab(), SECRETS)

    assert [r.name for r in results] == [c.name for c in verify_checks(INVENTORY)]
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    token = next(r for r in results if r.name == "openstack token issue (admin)")
    assert token.detail == "2024-05-01T12:00:00+0000"


def test_failing_ping_is_reported():
    fleet = healthy_lab()
    for name in ("controller", "object1"):
        fleet[name].answer(r"^ping -c 1 -W 2 172\.31\.0\.6$",
                           RunResult(1, "1 packets transmitted, 0 received, 100% packet loss\n"))

    results = run_checks(verify_checks(INVENTORY), fleet, SECRETS)

    failed = [(r.host, r.name) for r in results if not r.passed]
    assert failed == [("controller", "ping object2 (172.31.0.6)"), ("object1", "ping object2 (172.31.0.6)")]
    assert next(r for r in results if not r.passed).detail.startswith("exit 1\n")


def test_chrony_fails_when_the_controller_is_not_the_selected_source():
    fleet = healthy_lab()
    fleet["object2"].answer(r"chronyc -n sources", RunResult(0, "^- 172.31.0.4   3   6   377\n"
                                                               "^* 169.254.169.123   1   6   377\n"))

    results = run_checks(verify_checks(INVENTORY), fleet, SECRETS)

    assert [(r.host, r.name) for r in results if not r.passed] == [("object2", "time synchronised to controller "
                                                                               "(172.31.0.4)")]


def test_device_not_xfs_or_not_mounted_fails():
    fleet = healthy_lab()
    fleet["object1"].answer(r"^findmnt -n -o FSTYPE,TARGET /srv/node/sdc$", RunResult(0, "ext4   /srv/node/sdc\n"))
    fleet["object2"].answer(r"^findmnt -n -o FSTYPE,TARGET /srv/node/sdb$", RunResult(1, ""))

    results = run_checks(verify_checks(INVENTORY), fleet, SECRETS)

    assert [(r.host, r.name) for r in results if not r.passed] == [("object1", "sdc is XFS at /srv/node/sdc"),
                                                                   ("object2", "sdb is XFS at /srv/node/sdb")]


def test_check_details_never_contain_secrets():
    fleet = healthy_lab()
    fleet["controller"].answer(r"admin-openrc && openstack token issue",
                               RunResult(1, "", f"The request you have made requires authentication ({SECRET})"))

    results = run_checks(verify_checks(INVENTORY), fleet, SECRETS)
    out = io.StringIO()
    render_checks(results, Console(file=out, width=200))

    failed = [r for r in results if not r.passed]
    assert [r.name for r in failed] == ["openstack token issue (admin)"]
    assert MASK in failed[0].detail and SECRET not in failed[0].detail
    assert SECRET not in out.getvalue() and "FAIL" in out.getvalue()


def test_unreachable_host_fails_its_checks_and_not_the_others():
    fleet = healthy_lab()

    def refuse(command, _stdin):
        raise TimeoutError("ssh to 172.31.0.6 timed out")

    fleet["object2"].answer(r".", refuse)

    results = run_checks(verify_checks(INVENTORY), fleet, SECRETS)

    assert {r.host for r in results if not r.passed} == {"object2"}
    assert all(r.detail == "could not run: TimeoutError: ssh to 172.31.0.6 timed out"
               for r in results if r.host == "object2")
