"""The twin's DHCP server (twin/dhcp.py): dnsmasq's command line, the MAC the twin gives a
body's eth0, the security groups letting the answers through, and the real dnsmasq leasing a
body its address for its MAC (and nothing to a MAC it does not know) in a namespace of its own.

The real-server test needs root and dnsmasq (scripts/host-deps.sh): it skips without them
locally and fails in CI (CI=true). Its bridge and namespace are its own, not the twin's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twin import dhcp, firewall
from twin.desired import desired_bodies
from twin.dhcp import DhcpServer, Lease
from twin.model import IngressRule, InstanceBody

MAC = "02:4f:1a:00:00:0a"
OTHER_MAC = "02:4f:1a:00:00:0b"


def test_dnsmasq_serves_one_static_range_per_subnet_and_one_host_per_lease(tmp_path):
    argv = dhcp.dnsmasq_argv("labbr0", [Lease(MAC, "172.31.0.10", "172.31.0.0/20"),
                                        Lease(OTHER_MAC, "172.31.0.11", "172.31.0.0/20")], tmp_path)
    assert argv[0] == dhcp.DNSMASQ
    assert [a for a in argv if a.startswith("--dhcp-range")] == ["--dhcp-range=172.31.0.0,static,255.255.240.0,1h"]
    assert [a for a in argv if a.startswith("--dhcp-host")] == [f"--dhcp-host={MAC},172.31.0.10",
                                                                 f"--dhcp-host={OTHER_MAC},172.31.0.11"]
    # DHCP only, nothing of this machine's dnsmasq configuration, on the bridge alone; no ping
    # check (the body already holds the address it asks for)
    assert {"--port=0", "--conf-file=/dev/null", "--interface=labbr0", "--no-ping", "--leasefile-ro"} <= set(argv)
    assert f"--pid-file={tmp_path / dhcp.PID_FILE}" in argv


def _instance(mac_index: int | None) -> dict:
    interfaces = [] if mac_index is None else [
        {"MacAddress": "02:00:00:00:00:99", "Attachment": {"DeviceIndex": 1}},
        {"MacAddress": f"02:00:00:00:00:{mac_index:02d}", "Attachment": {"DeviceIndex": 0}}]
    return {"InstanceId": "i-0123456789abcdef0", "State": {"Name": "running"}, "PrivateIpAddress": "172.31.0.10",
            "SubnetId": "subnet-1", "KeyName": "", "InstanceType": "t3.small", "NetworkInterfaces": interfaces,
            "Tags": [{"Key": "lab:name", "Value": "lab"}, {"Key": "lab:node", "Value": "controller"}]}


@pytest.mark.parametrize(("mac_index", "mac"), [(5, "02:00:00:00:00:05"), (None, "")])
def test_a_body_carries_its_primary_interfaces_mac(mac_index, mac):
    described = {"Reservations": [{"Instances": [_instance(mac_index)]}]}
    subnets = {"Subnets": [{"SubnetId": "subnet-1", "CidrBlock": "172.31.0.0/20"}]}
    bodies = desired_bodies(described, {"Volumes": []}, {"SecurityGroups": []}, {"KeyPairs": []}, subnets)
    assert [b.mac for b in bodies] == [mac]


def test_security_groups_let_the_dhcp_servers_answers_out_to_the_bodies_only_that():
    body = InstanceBody(instance_id="i-1", lab="lab", hostname="controller", private_ip="172.31.0.10",
                        subnet_cidr="172.31.0.0/20", ssh_user="admin", public_key="",
                        ingress=(IngressRule("tcp", 22, 22, ("172.31.0.1/32",)),))
    ruleset = firewall.render_ruleset([body])
    output = ruleset.split("chain output_hook")[1].split("}")[0]
    forward = ruleset.split("chain forward_hook")[1].split("}")[0]
    assert firewall.DHCP_ANSWER.strip() in output  # from this machine's port 67 to a client's 68
    assert "dport 68" not in forward  # between bodies, the groups alone decide


# ------------------------------------------------------------------ the real dnsmasq
BRIDGE, SUBNET, GATEWAY, ADDRESS = "ltdhcp0", "10.250.7.0/24", "10.250.7.1", "10.250.7.10"
NETNS, VETH = "ltdhcp-ns", "ltdhcp-v0"

# A DHCPDISCOVER as dhclient sends it (no broadcast flag: the answer comes unicast to the
# offered address and the MAC asked for), from the namespace; with "broadcast", one that asks
# for the answer broadcast (for a MAC the namespace's eth0 does not carry). Prints the
# offered address, the message type and the router, or "none".
CLIENT = r"""
import os, socket, struct, sys
mac = bytes.fromhex(sys.argv[1].replace(":", ""))
xid = os.urandom(4)
flags = 0x8000 if sys.argv[3:] == ["broadcast"] else 0
packet = (struct.pack("!BBBB", 1, 1, 6, 0) + xid + struct.pack("!HH", 0, flags) + b"\0" * 16 + mac + b"\0" * 10 + b"\0" * 192
          + bytes([99, 130, 83, 99, 53, 1, 1, 55, 2, 1, 3, 255]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 68))
s.settimeout(float(sys.argv[2]))
s.sendto(packet, ("255.255.255.255", 67))
try:
    while True:
        answer = s.recv(1500)
        if answer[4:8] == xid:
            break
except socket.timeout:
    print("none"); sys.exit(0)
options, i, found = answer[240:], 0, {}
while i < len(options) and options[i] != 255:
    found[options[i]] = options[i + 2:i + 2 + options[i + 1]]; i += 2 + options[i + 1]
print(socket.inet_ntoa(answer[16:20]), found[53][0], socket.inet_ntoa(found[3]))
"""


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


@pytest.fixture
def bridge_and_body():
    if os.geteuid() != 0 or shutil.which("dnsmasq") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the DHCP server's test must run in CI but needs root and dnsmasq (dnsmasq-base)")
        pytest.skip("needs root and dnsmasq (dnsmasq-base)")
    _ip("link", "add", BRIDGE, "type", "bridge")
    try:
        _ip("addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        _ip("netns", "add", NETNS)
        _ip("link", "add", VETH, "type", "veth", "peer", "name", "eth0", "address", MAC, "netns", NETNS)
        _ip("link", "set", VETH, "master", BRIDGE, "up")
        _ip("-n", NETNS, "addr", "add", f"{ADDRESS}/24", "dev", "eth0")  # as the twin sets it before the boot
        _ip("-n", NETNS, "link", "set", "eth0", "up")
        _ip("-n", NETNS, "link", "set", "lo", "up")
        _ip("-n", NETNS, "route", "add", "default", "via", GATEWAY)
        yield
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


def _discover(mac: str, timeout: float = 3.0, broadcast: bool = False) -> str:
    asked = subprocess.run(["ip", "netns", "exec", NETNS, sys.executable, "-c", CLIENT, mac, str(timeout),
                            *(["broadcast"] if broadcast else [])],
                           capture_output=True, text=True)
    assert asked.returncode == 0, asked.stderr
    return asked.stdout.strip()


def _offer_within(mac: str, seconds: float, broadcast: bool = False) -> str:
    """dnsmasq needs a moment to start: ask until it answers (or the time is up)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = _discover(mac, timeout=1.0, broadcast=broadcast)
        if answer != "none" or time.monotonic() > deadline:
            return answer


def test_the_real_dnsmasq_leases_a_body_its_address_for_its_mac_and_ends_with_its_parent(bridge_and_body, tmp_path):
    # Another DHCP server of this machine's, on another bridge (one that does not exist yet):
    # each is bound to its own interface, so both run.
    (tmp_path / "other").mkdir()
    other = DhcpServer("ltdhcp9", tmp_path / "other")
    other.serve([Lease(OTHER_MAC, "10.250.9.10", "10.250.9.0/24")])
    server = DhcpServer(BRIDGE, tmp_path)
    server.serve([Lease(MAC, ADDRESS, SUBNET)])
    try:
        # DHCPOFFER (2) of the body's own address, the gateway as router
        assert _offer_within(MAC, 10) == f"{ADDRESS} 2 {GATEWAY}"
        assert _discover(OTHER_MAC, timeout=2.0, broadcast=True) == "none"  # a MAC it was not given: no answer
        pid = int((tmp_path / dhcp.PID_FILE).read_text())
        server.serve([Lease(MAC, ADDRESS, SUBNET)])  # the same leases: the same process
        assert int((tmp_path / dhcp.PID_FILE).read_text()) == pid
        server.serve([Lease(OTHER_MAC, ADDRESS, SUBNET)])  # new leases: started again with them
        assert _offer_within(OTHER_MAC, 10, broadcast=True) == f"{ADDRESS} 2 {GATEWAY}"
        assert "DHCPOFFER" in (tmp_path / dhcp.LOG_FILE).read_text()
        assert other._alive()
    finally:
        server.stop()
        other.stop()
    assert _discover(OTHER_MAC, timeout=1.0, broadcast=True) == "none"  # stopped
    assert dhcp.stop_leftover(tmp_path) == []  # nothing left behind


def test_a_dnsmasq_left_by_a_killed_daemon_is_found_by_its_pid_file_and_stopped(bridge_and_body, tmp_path):
    server = DhcpServer(BRIDGE, tmp_path)
    server.serve([Lease(MAC, ADDRESS, SUBNET)])
    assert _offer_within(MAC, 10).startswith(ADDRESS)
    pid = int((tmp_path / dhcp.PID_FILE).read_text())
    process, server._process = server._process, None  # as if its daemon were gone without stopping it
    assert dhcp.stop_leftover(tmp_path) == [f"DHCP server (dnsmasq, pid {pid})"]
    assert process.wait(timeout=5) is not None  # it ended
    assert not (tmp_path / dhcp.PID_FILE).exists()


def test_a_pid_file_naming_another_program_stops_nothing(tmp_path):
    (tmp_path / dhcp.PID_FILE).write_text(f"{os.getpid()}\n")  # this very test, not a dnsmasq
    assert dhcp.stop_leftover(tmp_path) == []
    assert not (tmp_path / dhcp.PID_FILE).exists()
