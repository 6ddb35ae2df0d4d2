"""`lab up`'s work on the hosts: hostname, /etc/hosts, the Swift volumes; every host in parallel."""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lab.hostsfile import render_hosts
from lab.storage import VolumeReport, prepare_storage
from labcore.errors import RemoteError
from labcore.inventory import Inventory, NodeRecord
from labcore.remote import Remote, RemoteFactory


@dataclass
class HostReport:
    node: str
    changed: list[str] = field(default_factory=list)
    volumes: list[VolumeReport] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [", ".join(self.changed) if self.changed else "hostname and /etc/hosts already right"]
        parts += [str(v) for v in self.volumes]
        return f"{self.node}: " + "; ".join(parts)


def _hostname(remote: Remote, name: str) -> bool:
    if remote.run(f'[ "$(hostname)" = {shlex.quote(name)} ]').ok:
        return False
    q = shlex.quote(name)
    result = remote.run(f"hostnamectl set-hostname {q} 2>/dev/null || (echo {q} > /etc/hostname && hostname {q})")
    if not result.ok:
        raise RemoteError(f"{remote.name}: cannot set the hostname: {result.stderr.strip()}")
    return True


def _hosts_file(remote: Remote, inventory: Inventory) -> bool:
    existing = remote.run("cat /etc/hosts").stdout
    wanted = render_hosts(existing, inventory)
    if wanted == existing:
        return False
    result = remote.run("cat > /etc/hosts.lab-new && cat /etc/hosts.lab-new > /etc/hosts && rm -f /etc/hosts.lab-new",
                        stdin=wanted)
    if not result.ok:
        raise RemoteError(f"{remote.name}: cannot write /etc/hosts: {result.stderr.strip()}")
    return True


def prepare_host(node: NodeRecord, inventory: Inventory, factory: RemoteFactory) -> HostReport:
    remote = factory(node)
    report = HostReport(node.name)
    if _hostname(remote, node.name):
        report.changed.append(f"hostname set to {node.name}")
    if _hosts_file(remote, inventory):
        report.changed.append("/etc/hosts written")
    report.volumes = prepare_storage(remote, node.volumes)
    return report


def prepare_hosts(inventory: Inventory, factory: RemoteFactory, *, progress) -> list[HostReport]:
    with ThreadPoolExecutor(max_workers=len(inventory.nodes) or 1) as pool:
        futures = [pool.submit(prepare_host, n, inventory, factory) for n in inventory.nodes]
        return [f.result() for f in futures]
