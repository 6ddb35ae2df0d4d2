"""`.lab/<name>/ssh_config`: plain `ssh -F .lab/<name>/ssh_config controller` and scp just work."""

from __future__ import annotations

from pathlib import Path

from labcore.inventory import Inventory
from labcore.paths import LabPaths, write_private


def render_ssh_config(inventory: Inventory, paths: LabPaths | None = None, strict: str = "yes") -> str:
    """One Host block per node; key and known_hosts from paths when given, else from the inventory.

    strict: StrictHostKeyChecking, the target's (yes where the keys are pinned before the first SSH).
    Only the lab's known_hosts decides (GlobalKnownHostsFile /dev/null), as for Fabric."""
    key_file = paths.key_file if paths else Path(inventory.key_file)
    known_hosts = paths.known_hosts if paths else Path(inventory.known_hosts)
    blocks = []
    for node in inventory.nodes:
        blocks.append("\n".join([
            f"Host {node.name}",
            f"    HostName {node.ssh_host}",
            f"    User {node.ssh_user}",
            f"    IdentityFile {key_file.resolve()}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {known_hosts.resolve()}",
            "    GlobalKnownHostsFile /dev/null",
            f"    StrictHostKeyChecking {strict}",
            "    ConnectTimeout 10",
        ]))
    return "# written by `lab up`; regenerated on every run\n" + "\n\n".join(blocks) + "\n"


def write_ssh_config(inventory: Inventory, paths: LabPaths, strict: str) -> None:
    write_private(paths.ssh_config, render_ssh_config(inventory, paths, strict))
