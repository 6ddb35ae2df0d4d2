"""lab verify: which checks run where, and how their answers become a pass/fail table."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

from fakes import FakeFleet, run_with_fake_client
from plan_fixtures import IPS, inventory
from rich.console import Console

from bootstrap.report import render_checks
from bootstrap.verify import DEMO_OPENRC, ROUND_TRIP, run_checks, verify_checks
from labcore.remote import RunResult
from labcore.secrets import MASK, Secrets

SECRET = "0123456789abcdef0123456789abcdef"
SECRETS = Secrets({"admin_pass": SECRET})
INVENTORY = inventory("debian-12")
RING_FILES = Path(__file__).resolve().parent / "data" / "rings" / "py3-swift-2.38.3"  # made by real swift
RING_PARTS = Path(__file__).resolve().parent.parent / "bootstrap" / "host" / "ring_parts.py"


def healthy_rings() -> str:
    """ring_parts.py's lines for rings of real swift, their devices moved to this lab's object nodes."""
    lines = subprocess.run([sys.executable, str(RING_PARTS), str(RING_FILES), "--lines"], capture_output=True,
                           text=True, check=True).stdout
    return lines.replace("172.31.0.5/", f"{IPS['object1']}/").replace("172.31.0.6/", f"{IPS['object2']}/")


def healthy_lab() -> FakeFleet:
    """Answers the way a working lab does."""
    fleet = FakeFleet()
    for name in IPS:
        fleet[name].answer(r"^ping ", RunResult(0, "64 bytes: icmp_seq=1 ttl=64 time=0.05 ms\n"
                                                   "1 packets transmitted, 1 received, 0% packet loss\n"))
        fleet[name].answer(r"chronyc -n sources", RunResult(0, "MS Name/IP address   Stratum Poll Reach\n"
                                                              "===================================\n"
                                                              "^* 10.0.0.11   3   6   377    35   +12us[+15us]\n"))
        fleet[name].answer(r"^findmnt -n -o FSTYPE,TARGET /srv/node/(\w+)",
                           lambda c, s: RunResult(0, f"xfs    {c.split()[-1]}\n"))
        fleet[name].answer(r"^findmnt --verify", RunResult(0, "Success, no errors or warnings detected\n"))
    controller = fleet["controller"]
    controller.answer(r"openstack token issue", RunResult(0, "2024-05-01T12:00:00+0000\n"))
    controller.answer(r"swift stat", RunResult(0, "Account: AUTH_1234\nContainers: 0\nObjects: 0\n"))
    controller.answer(r"openstack object save", RunResult(0, "round trip ok: 1 MiB object, sha256 ab12\n"))
    controller.answer(r"ring_parts\.py /etc/swift --lines$", RunResult(0, healthy_rings()))
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


FAKE_OPENSTACK = """#!/bin/sh
# A Swift of files: container create C | object create C FILE | object list C ... | object save --file F C O
# | container delete --recursive C. CORRUPT=1 hands back other bytes than were stored.
store="$STORE"
case "$1 $2" in
  "container create") mkdir "$store/$3" ;;
  "object create") cp "$4" "$store/$3/$(basename "$4")" ;;
  "object list") ls "$store/$3" ;;
  "object save") if [ -n "$CORRUPT" ]; then echo other > "$4"; else cp "$store/$5/$6" "$4"; fi ;;
  "container delete") rm -rf "$store/$4" ;;
  *) echo "openstack: unexpected $*" >&2; exit 2 ;;
esac
"""


def round_trip(tmp_path, **env) -> subprocess.CompletedProcess:
    """The round trip script as verify sends it, run in sh against a Swift made of files."""
    (tmp_path / "demo-openrc").write_text("export OS_USERNAME=myuser\n")
    script = next(c.command for c in verify_checks(INVENTORY) if c.name.startswith("swift object round trip"))
    assert script == ROUND_TRIP.format(openrc=DEMO_OPENRC)
    return run_with_fake_client(tmp_path, script, "openstack", FAKE_OPENSTACK, "demo-openrc", **env)


def test_the_round_trip_stores_reads_back_compares_and_cleans_up(tmp_path):
    done = round_trip(tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"round trip ok: 1 MiB object, sha256 [0-9a-f]{64}\n", done.stdout)
    assert list((tmp_path / "store").iterdir()) == []  # its random container is gone


def test_the_round_trip_fails_on_other_bytes_and_still_cleans_up(tmp_path):
    done = round_trip(tmp_path, CORRUPT="1")
    assert done.returncode == 1 and "checksum mismatch" in done.stderr
    assert list((tmp_path / "store").iterdir()) == []


def test_all_checks_pass_on_a_healthy_lab():
    results = run_checks(verify_checks(INVENTORY), healthy_lab(), SECRETS)

    assert [r.name for r in results] == [c.name for c in verify_checks(INVENTORY)]
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    token = next(r for r in results if r.name == "openstack token issue (admin)")
    assert token.detail == "2024-05-01T12:00:00+0000"


def test_failing_ping_is_reported():
    fleet = healthy_lab()
    for name in ("controller", "object1"):
        fleet[name].answer(r"^ping -c 1 -W 2 10\.0\.0\.52$",
                           RunResult(1, "1 packets transmitted, 0 received, 100% packet loss\n"))

    results = run_checks(verify_checks(INVENTORY), fleet, SECRETS)

    failed = [(r.host, r.name) for r in results if not r.passed]
    assert failed == [("controller", "ping object2 (10.0.0.52)"), ("object1", "ping object2 (10.0.0.52)")]
    assert next(r for r in results if not r.passed).detail.startswith("exit 1\n")


def test_chrony_fails_when_the_controller_is_not_the_selected_source():
    fleet = healthy_lab()
    fleet["object2"].answer(r"chronyc -n sources", RunResult(0, "^- 10.0.0.11   3   6   377\n"
                                                               "^* 169.254.169.123   1   6   377\n"))

    results = run_checks(verify_checks(INVENTORY), fleet, SECRETS)

    assert [(r.host, r.name) for r in results if not r.passed] == [("object2", "time synchronised to controller "
                                                                               "(10.0.0.11)")]


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
        raise TimeoutError("ssh to 10.0.0.52 timed out")

    fleet["object2"].answer(r".", refuse)

    results = run_checks(verify_checks(INVENTORY), fleet, SECRETS)

    assert {r.host for r in results if not r.passed} == {"object2"}
    assert all(r.detail == "could not run: TimeoutError: ssh to 10.0.0.52 timed out"
               for r in results if r.host == "object2")
