"""The physical floor of `lab install` on the twin: plain apt-gets of the same packages.

`lab install` cannot be faster than downloading and unpacking the packages it needs, so
this boots ONE fresh twin container (the same cached Debian 12 image and the same shared
apt download cache as a lab's hosts get), lets it finish booting as a lab's host has before
`lab install` reaches it (cloud-init done, with a metadata service to ask, as on a lab), and
only then times, inside it:

    apt-get update && apt-get install -y --no-install-recommends <every package of every role>

Compare with the wall time of `lab install` on a fresh lab (the e2e test prints it):
install / floor is the overhead of configuring OpenStack the guide's way (target <= 1.3).

    sudo .venv/bin/python bench/sim_install_floor.py [--role controller --role object]

`--lab` measures the lab's own floor instead: one fresh container per host of the default
lab (a t3.large controller, two t3.medium storage nodes, with the twin's CPU weights), each
installing its own role's packages with one plain apt-get, all at once. That is what the
lab's hosts cannot beat on this machine: on two cores the storage nodes' packages (the guide
puts the OpenStack client on every node) compete with the controller's.

Needs root and no lab running on the twin (it borrows the twin's bridge and removes it).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bootstrap.components import tempauth  # noqa: E402
from bootstrap.components.packages import starts_deferred  # noqa: E402
from bootstrap.context import apt_install  # noqa: E402
from bootstrap.profiles import DEBIAN_12  # noqa: E402
from twin import container, netns  # noqa: E402
from twin.bodies import HostBodies  # noqa: E402
from twin.client import check_host  # noqa: E402
from twin.dhcp import DhcpServer, Lease  # noqa: E402
from twin.hostcmd import sh  # noqa: E402
from twin.imds import InstanceMeta  # noqa: E402
from twin.imds_server import MetadataService  # noqa: E402
from twin.model import InstanceBody  # noqa: E402

SUBNET = "172.31.0.0/20"
INSTANCE = "i-0f100rbench0000"
# The default lab's hosts: (instance id, role, instance type, address).
LAB_HOSTS = (("i-0f100rbench0001", "controller", "t3.large", "172.31.15.241"),
             ("i-0f100rbench0002", "object", "t3.medium", "172.31.15.242"),
             ("i-0f100rbench0003", "object", "t3.medium", "172.31.15.243"))


def packages(roles: list[str], auth: str = "keystone") -> list[str]:
    """The roles' packages in a lab of this auth mode (a TempAuth lab has no Keystone and its environment)."""
    def of(role: str) -> tuple[str, ...]:
        return tempauth.packages_for(DEBIAN_12, role) if auth == "tempauth" else DEBIAN_12.packages_for(role)

    return list(dict.fromkeys(p for role in roles for p in of(role)))


def lab_hosts(spec) -> tuple[tuple[str, str, str, str], ...]:
    """A config's hosts as LAB_HOSTS has the default lab's: (instance id, role, instance type, address)."""
    return tuple((f"i-0f100rbench{i + 1:04d}", node.role, node.type, f"172.31.15.{241 + i}")
                 for i, node in enumerate(spec.nodes.values()))


def run_in(init_pid: int, script: str) -> float:
    started = time.monotonic()
    sh("nsenter", "-t", str(init_pid), "-m", "-u", "-i", "-n", "-p", "--", "sh", "-c", script, timeout=3600)
    return time.monotonic() - started


def floor_mac(index: int) -> str:
    """A floor body's MAC (locally administered, as EC2's are), which its eth0 carries and DHCP leases by."""
    return f"02:f1:00:00:00:{index:02x}"


def _init_of(state: Path, body: InstanceBody) -> int:
    return container.wait_for_init(int((state / "bodies" / body.instance_id / "nspawn.pid").read_text()))


def _floor_metadata(bodies: list[InstanceBody]):
    """The metadata a floor body's cloud-init asks for, by address (no key pair, no user data);
    the twin's DHCP server leases each its address first, as in a lab.

    Without an answer cloud-init's Ec2 datasource waits up to two minutes for one, and every
    unit ordered after network-online.target (swift-proxy's, started by its package) waits
    with it: a floor that measured that wait, not apt (153 s against an install of 85 s).
    """
    known = {b.private_ip: InstanceMeta(
        instance_id=b.instance_id, image_id="ami-0f100rbench", instance_type=b.instance_type or "t3.large",
        private_ip=b.private_ip, private_dns=f"ip-{b.private_ip.replace('.', '-')}.internal",
        availability_zone="ap-northeast-2a", region="ap-northeast-2", mac=b.mac,
        tokens_required=False) for b in bodies}
    return known.get


def _booted(state: Path, body: InstanceBody) -> None:
    """Until the body's cloud-init is done (0, or 2: done with a recoverable error), as a lab's host
    is before `lab install` reaches it (first_boot waits for the same)."""
    run_in(_init_of(state, body), "cloud-init status --wait >/dev/null; test $? -ne 1")


def _install(state: Path, body: InstanceBody, roles: list[str], defer_starts: bool,
             auth: str = "keystone") -> tuple[float, float]:
    """(apt-get update seconds, apt-get install seconds) of roles' packages in body's fresh container."""
    init = _init_of(state, body)
    selections = "\n".join(DEBIAN_12.debconf_selections)
    run_in(init, f"printf '%s\\n' {shlex.quote(selections)} | debconf-set-selections")
    update = run_in(init, "apt-get update -q >/dev/null")
    command = apt_install(packages(roles, auth)) + " >/dev/null"
    return update, run_in(init, starts_deferred(command) if defer_starts else command)


def _in_fresh_containers(bodies: list[InstanceBody], work) -> tuple[list, float]:
    """work(state, body) for every body at once, each in a fresh container booted
    beforehand; (the results in order, wall seconds from the start of the work to its end)."""
    metadata = MetadataService(_floor_metadata(bodies))
    with tempfile.TemporaryDirectory(prefix="lab-floor-") as tmp:
        state = Path(tmp)
        layer, dhcp = HostBodies(state), DhcpServer(netns.BRIDGE, state)
        try:
            metadata.serve_on({netns.gateway(SUBNET).split("/")[0]})
            dhcp.serve([Lease(body.mac, body.private_ip, SUBNET) for body in bodies])
            layer.ensure_network(SUBNET)
            for body in bodies:
                layer.start(body)
            with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
                list(pool.map(lambda body: _booted(state, body), bodies))
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
                results = list(pool.map(lambda body: work(state, body), bodies))
            return results, time.monotonic() - started
        finally:
            metadata.stop()
            dhcp.stop()
            for line in layer.teardown_all():
                print(f"  cleaned: {line}", file=sys.stderr)


def measure_floor(roles: list[str], defer_starts: bool = False, auth: str = "keystone") -> tuple[int, float, float]:
    """(number of packages, apt-get update seconds, apt-get install seconds) in one fresh container.

    Needs root and no lab running on the twin (it borrows the twin's bridge and removes it).
    """
    body = InstanceBody(INSTANCE, "floor", "floor", "172.31.15.250", SUBNET, "debian", "", mac=floor_mac(0))
    [(update, install)], _ = _in_fresh_containers(
        [body], lambda state, b: _install(state, b, roles, defer_starts, auth))
    return len(packages(roles, auth)), update, install


def measure_lab_floor(defer_starts: bool = False, hosts=LAB_HOSTS, auth: str = "keystone") -> float:
    """Wall seconds until every host of the lab (default: the default lab's) has its own packages,
    all installing at once."""
    bodies = [InstanceBody(iid, "floor", f"{role}{i}", ip, SUBNET, "debian", "", instance_type=itype,
                           mac=floor_mac(i)) for i, (iid, role, itype, ip) in enumerate(hosts)]
    roles = {body.instance_id: role for body, (_, role, _, _) in zip(bodies, hosts)}
    _, seconds = _in_fresh_containers(
        bodies, lambda state, body: _install(state, body, [roles[body.instance_id]], defer_starts, auth))
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", action="append", choices=("controller", "object"),
                        help="roles whose packages to install (default: both, the whole lab's set)")
    parser.add_argument("--defer-starts", action="store_true",
                        help="as `lab install` does: no service starts while apt runs (policy-rc.d)")
    parser.add_argument("--lab", action="store_true",
                        help="the lab's own floor: every host of the default lab its own packages, all at once")
    args = parser.parse_args()
    check_host()
    if netns.link_exists(netns.BRIDGE):
        print("a lab is running on the twin: run `lab down` first (this borrows its bridge)", file=sys.stderr)
        return 2
    if args.lab:
        print(f"the lab's hosts, each its own packages in a fresh container, all at once: "
              f"{measure_lab_floor(args.defer_starts):.1f} s")
        return 0
    count, update, install = measure_floor(args.role or ["controller", "object"], args.defer_starts)
    how = "services not started (policy-rc.d)" if args.defer_starts else "plain"
    print(f"{count} packages in one fresh container, {how}: apt-get update {update:.1f} s, "
          f"apt-get install {install:.1f} s, floor = {update + install:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
