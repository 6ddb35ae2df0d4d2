"""Prove the lab works, as the field notes and the install guide check it by hand.

Checks are data built by a pure function of the inventory (so tests see exactly what
will be asked of which host), then run in parallel across hosts. A check passes when its
command exits 0 and, if it has one, its expect pattern is found in stdout.
"""

from __future__ import annotations

import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bootstrap.components.tempauth import ADMIN_SWIFTRC, DEMO_SWIFTRC
from bootstrap.hostprograms import call
from labcore.inventory import Inventory, NodeRecord
from labcore.remote import RemoteFactory, RunResult
from labcore.secrets import Secrets

ADMIN_OPENRC = "/root/admin-openrc"
DEMO_OPENRC = "/root/demo-openrc"
DETAIL_LINES = 5
CHRONY_WAIT_SECONDS = 60  # chrony selects its source a few polls after a restart


@dataclass(frozen=True)
class Check:
    name: str
    node: NodeRecord
    command: str
    expect: str | None = None  # regex (multiline) stdout must contain; its match is the PASS detail
    timeout: float = 300

    @property
    def host(self) -> str:
        return self.node.name


@dataclass(frozen=True)
class CheckResult:
    name: str
    host: str
    passed: bool
    detail: str  # masked


# ------------------------------------------------------------------ the checks (pure)
def ping_checks(inventory: Inventory) -> list[Check]:
    """Every node pings every other node by private IP: the self-referencing ICMP rule at work."""
    return [Check(f"ping {other.name} ({other.private_ip})", node, f"ping -c 1 -W 2 {other.private_ip}", timeout=30)
            for node in inventory.nodes for other in inventory.nodes if other.name != node.name]


def chrony_checks(inventory: Inventory) -> list[Check]:
    """Every other node follows the controller: chrony selected (^*) the controller's IP."""
    ip = inventory.controller.private_ip
    selected = rf"^\^\*\s+{re.escape(ip)}\b"
    # A follower that started before the controller served time polls it only every 64-128 s;
    # a burst of measurements now lets it select the controller within the wait.
    wait = (f"chronyc burst 4/4 >/dev/null; i=0; while [ $i -lt {CHRONY_WAIT_SECONDS // 2} ] && ! chronyc -n sources | grep -Eq "
            f"{shlex.quote(selected)}; do i=$((i+1)); sleep 2; done; chronyc -n sources")
    return [Check(f"time synchronised to controller ({ip})", node, wait, expect=selected + r".*$",
                  timeout=CHRONY_WAIT_SECONDS + 30)
            for node in inventory.nodes if node.name != inventory.controller.name]


def keystone_checks(inventory: Inventory) -> list[Check]:
    """A token for admin and for demo; only its expiry is shown (a token is a live credential)."""
    controller = inventory.controller
    return [Check(f"openstack token issue ({who})", controller,
                  f". {openrc} && openstack token issue -f value -c expires", expect=r"\d{4}-\d\d-\d\dT\S+")
            for who, openrc in (("admin", ADMIN_OPENRC), ("demo", DEMO_OPENRC))]


def tempauth_checks(inventory: Inventory) -> list[Check]:
    """TempAuth's v1 auth (GET /auth/v1.0) for admin and demo: only the storage URL it hands out is shown
    (the token is a live credential). `swift auth` asks exactly that, with the swiftrc's ST_* values."""
    return [Check(f"tempauth v1 auth /auth/v1.0 ({who})", inventory.controller,
                  f". {rc} && swift auth | sed -n 's/^export OS_STORAGE_URL=//p'", expect=r"^http://\S+/v1/AUTH_\w+$")
            for who, rc in (("admin", ADMIN_SWIFTRC), ("demo", DEMO_SWIFTRC))]


def swift_stat_check(inventory: Inventory) -> Check:
    rc = DEMO_SWIFTRC if inventory.auth == "tempauth" else DEMO_OPENRC
    return Check("swift stat (demo)", inventory.controller, f". {rc} && swift stat", expect=r"Account: \S+")


ROUND_TRIP = """set -e
. {openrc}
suffix=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \\n')
container=lab-verify-$suffix
object=object-$suffix.bin
work=$(mktemp -d)
cleanup() {{
  openstack container delete --recursive "$container" >/dev/null 2>&1 ||
    echo "could not delete container $container" >&2
  rm -rf "$work"
}}
trap cleanup EXIT
cd "$work"
head -c 1M /dev/urandom > "$object"
openstack container create "$container" >/dev/null
openstack object create "$container" "$object" >/dev/null
if ! openstack object list "$container" -f value -c Name | grep -qx "$object"; then
  echo "$object not listed in $container" >&2; exit 1
fi
openstack object save --file "$work/downloaded" "$container" "$object"
sent=$(sha256sum < "$object" | cut -d' ' -f1)
got=$(sha256sum < "$work/downloaded" | cut -d' ' -f1)
[ "$sent" = "$got" ] || {{ echo "checksum mismatch: sent $sent, got $got" >&2; exit 1; }}
echo "round trip ok: 1 MiB object, sha256 $sent"
"""


# The same round trip with the swift client and a swiftrc (TempAuth; the openstack client needs Keystone).
TEMPAUTH_ROUND_TRIP = (ROUND_TRIP
                       .replace('openstack container delete --recursive "$container"', 'swift delete "$container"')
                       .replace('openstack container create "$container"', 'swift post "$container"')
                       .replace('openstack object create "$container" "$object"', 'swift upload "$container" "$object"')
                       .replace('openstack object list "$container" -f value -c Name', 'swift list "$container"')
                       .replace('openstack object save --file "$work/downloaded" "$container" "$object"',
                                'swift download -o "$work/downloaded" "$container" "$object" >/dev/null'))


def swift_round_trip_check(inventory: Inventory) -> Check:
    """Create, upload, list, download, compare, clean up: the guide's verify with a checksum."""
    if inventory.auth == "tempauth":
        return Check("swift object round trip (demo, tempauth)", inventory.controller,
                     TEMPAUTH_ROUND_TRIP.format(openrc=DEMO_SWIFTRC), expect=r"round trip ok.*")
    return Check("swift object round trip (demo)", inventory.controller, ROUND_TRIP.format(openrc=DEMO_OPENRC),
                 expect=r"round trip ok.*")


def device_checks(inventory: Inventory) -> list[Check]:
    """Every Swift device is XFS at /srv/node/<name>, and fstab verifies clean on its node (a node or
    volume taken out of the config is not the lab's storage any more: it is drained, then removed)."""
    checks = []
    for node in inventory.nodes:
        if node.leaving or (not node.volumes and node.role != "object"):
            continue
        for volume in (v for v in node.volumes if not v.leaving):
            target = f"/srv/node/{volume.name}"
            checks.append(Check(f"{volume.name} is XFS at {target}", node, f"findmnt -n -o FSTYPE,TARGET {target}",
                                expect=rf"(?m)^xfs\s+{re.escape(target)}$", timeout=30))
        checks.append(Check("findmnt --verify (fstab)", node, "findmnt --verify 2>&1", timeout=30))
    return checks


RINGS = ("account", "container", "object")


def ring_checks(inventory: Inventory) -> list[Check]:
    """Each ring file on the controller (what the proxy uses) holds exactly the config's Swift devices:
    ring_parts.py prints its devices with their zones, weights and partitions, the detail shown."""
    wanted = sorted((n.private_ip, v.name) for n in inventory.nodes if n.role == "object" and not n.leaving
                    for v in n.volumes if not v.leaving)
    devices = ", ".join(rf"{re.escape(ip)}/{re.escape(name)} \(zone \d+, weight [\d.]+, \d+ partitions\)"
                        for ip, name in wanted)
    command = call("python3", "ring_parts.py", "/etc/swift", "--lines")
    return [Check(f"{ring} ring: {len(wanted)} devices", inventory.controller, command,
                  expect=rf"(?m)^{ring} ring: {len(wanted)} devices, [\d.]+ replicas, partition power \d+: {devices}$",
                  timeout=30)
            for ring in RINGS] if wanted else []


def verify_checks(inventory: Inventory) -> list[Check]:
    auth = tempauth_checks(inventory) if inventory.auth == "tempauth" else keystone_checks(inventory)
    return [*ping_checks(inventory), *chrony_checks(inventory), *auth,
            swift_stat_check(inventory), swift_round_trip_check(inventory), *ring_checks(inventory),
            *device_checks(inventory)]


# ------------------------------------------------------------------ running them
def _judge(check: Check, result: RunResult) -> tuple[bool, str]:
    match = re.search(check.expect, result.stdout, re.M) if check.expect else None
    if result.ok and (check.expect is None or match):
        last = result.stdout.strip().splitlines()[-1:] if result.stdout.strip() else []
        return True, match.group(0).strip() if match else (last[0] if last else "exit 0")
    text = "\n".join(part for part in (result.stderr.strip(), result.stdout.strip()) if part)
    tail = text.splitlines()[-DETAIL_LINES:]
    why = f"exit {result.exited}" if not result.ok else f"output lacks /{check.expect}/"
    return False, "\n".join([why, *tail])


def _run_host(checks: list[Check], factory: RemoteFactory, secrets: Secrets) -> list[CheckResult]:
    results = []
    remote = factory(checks[0].node)  # one connection per host, used by one thread
    try:
        for check in checks:
            try:
                passed, detail = _judge(check, remote.run(check.command, sudo=True, timeout=check.timeout))
            except Exception as exc:  # noqa: BLE001 - an unreachable host is a failed check, shown in the table
                passed, detail = False, f"could not run: {type(exc).__name__}: {exc}"
            results.append(CheckResult(check.name, check.host, passed, secrets.mask(detail)))
    finally:
        remote.close()
    return results


def run_checks(checks: list[Check], factory: RemoteFactory, secrets: Secrets) -> list[CheckResult]:
    """Hosts in parallel, a host's checks in order; results in the order of checks."""
    by_host: dict[str, list[int]] = {}
    for index, check in enumerate(checks):
        by_host.setdefault(check.host, []).append(index)
    if not by_host:
        return []
    results: list[CheckResult | None] = [None] * len(checks)
    with ThreadPoolExecutor(max_workers=len(by_host), thread_name_prefix="verify") as pool:
        done = pool.map(lambda own: (own, _run_host([checks[i] for i in own], factory, secrets)), by_host.values())
        for indices, host_results in done:
            for index, result in zip(indices, host_results):
                results[index] = result
    return [r for r in results if r is not None]
