"""`lab up`'s work on the hosts: their base state, then the Swift volumes; every host in parallel.

The base state (the lab's host programs, first boot finished, hostname, /etc/hosts) is
the same steps `lab install` starts with (bootstrap/components/base.py), run by the same
runner: one definition of what a host must be before anything else happens on it. The
volumes are this command's own job (lab/storage.py); they come after first boot, since
their preparation may apt-get xfsprogs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lab.storage import VolumeReport, prepare_storage
from labcore.inventory import Inventory, NodeRecord
from labcore.paths import LabPaths
from labcore.remote import RemoteFactory
from labcore.secrets import Secrets


@dataclass
class HostReport:
    node: str
    changed: list[str] = field(default_factory=list)  # the base steps that changed something
    volumes: list[VolumeReport] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{', '.join(self.changed)} set" if self.changed else "base state already right"]
        parts += [str(v) for v in self.volumes]
        return f"{self.node}: " + "; ".join(parts)


def prepare_hosts(inventory: Inventory, factory: RemoteFactory, *, progress: Callable[[str], None],
                  log_dir: Path | None = None, reboot: Callable[[NodeRecord], None] | None = None) -> list[HostReport]:
    """The hosts' base state through the runner, then each host's volumes; a RemoteError
    (one message naming host and step) when a host cannot be prepared."""
    from bootstrap.planner import host_plan
    from bootstrap.runner import run_plan

    report = run_plan(host_plan(inventory), inventory, factory, Secrets({}),
                      log_dir=log_dir or LabPaths.for_lab(inventory.lab).logs, progress=progress, reboot=reboot,
                      title="lab up")
    report.raise_for_failure()
    reports = {n.name: HostReport(n.name, [r.step for r in report.results if r.host == n.name and
                                          r.status == "changed"]) for n in inventory.nodes}

    def storage(node: NodeRecord) -> None:
        reports[node.name].volumes = prepare_storage(factory(node), node.volumes)

    with ThreadPoolExecutor(max_workers=len(inventory.nodes) or 1) as pool:
        list(pool.map(storage, inventory.nodes))
    return [reports[n.name] for n in inventory.nodes]
