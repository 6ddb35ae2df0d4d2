"""What the config says against what `lab up` last applied (the inventory): never passed over in silence.

`lab install`, `verify`, `plan` and `reboot` read both files. The plan is built from the
inventory, so a node taken out of `nodes:` without a `lab up` stays in the rings and the
install says "0 changed": right about the inventory, silent about the config the user
edited. Comparing the two first names what `lab up` has not taken yet, before any SSH, so
a command that changes hosts (install, reboot) or judges them (verify) stops with nothing
changed, and the read-only ones (plan, install --check) go on with the line as a warning.

Pure: a LabSpec and an Inventory in, a list of differences out. Nodes and volumes the
inventory marks `leaving` are already taken: `lab up` recorded them as leaving the config.
"""

from __future__ import annotations

from lab.config import LabSpec
from labcore.errors import LabError
from labcore.inventory import Inventory


class ConfigNotApplied(LabError):
    """The config differs from the lab `lab up` made: the input is fine, the lab is behind it (exit 1)."""

    exit_code = 1


def differences(spec: LabSpec, inventory: Inventory, host_os: str | None = None) -> list[str]:
    """What the config has that the inventory has not, or the other way round, as short phrases.

    host_os: the OS the target decides for its hosts (the twin's), which the config's `os:` does not move.
    """
    found: list[str] = []
    live = {n.name: n for n in inventory.nodes if not n.leaving}
    found += [f"node {name} added" for name in spec.nodes if name not in live]
    found += [f"node {name} removed" for name in live if name not in spec.nodes]
    for name, node in spec.nodes.items():
        if name not in live:
            continue  # its volumes come with it
        have = [v.name for v in live[name].volumes if not v.leaving]
        found += [f"volume {name}/{v} added" for v in node.volumes if v not in have]
        found += [f"volume {name}/{v} removed" for v in have if v not in node.volumes]
    wanted_os = host_os or spec.openstack.os
    if inventory.os != wanted_os:
        found.append(f"os {inventory.os} -> {wanted_os}")
    if inventory.auth != spec.auth:
        found.append(f"auth {inventory.auth} -> {spec.auth}")
    if inventory.swift_pipeline != spec.swift.pipeline:
        found.append(f"swift pipeline {inventory.swift_pipeline} -> {spec.swift.pipeline}")
    return found


def drift_line(spec: LabSpec, inventory: Inventory, config_path: str, host_os: str | None = None) -> str | None:
    """One line naming what differs and the command that takes it; None when the lab is what the config says."""
    found = differences(spec, inventory, host_os)
    if not found:
        return None
    if any(d.startswith("auth ") for d in found):
        auth = next(d for d in found if d.startswith("auth "))
        return (f"{config_path}: {', '.join(found)}: a lab does not switch between keystone and tempauth; put "
                f"`auth:` back, or `lab down` and `lab up` for a new lab ({auth.split()[-1]})")
    return (f"{config_path} differs from what `lab up` applied to lab {inventory.lab}: {', '.join(found)}; "
            f"`lab up` takes it (then `lab install`)")


def check_applied(spec: LabSpec, inventory: Inventory, config_path: str, host_os: str | None = None) -> None:
    """Raise ConfigNotApplied (exit 1) with the drift line when the config is not what the lab is."""
    line = drift_line(spec, inventory, config_path, host_os)
    if line is not None:
        raise ConfigNotApplied(line)


def refuse_auth_switch(spec: LabSpec, inventory_path, config_path: str) -> None:
    """`lab up` of a lab that exists (its inventory is there) with the other `auth:`: refused, nothing made.

    A Keystone lab's proxy, rings and accounts are not a TempAuth lab's (nor the other way
    round): switching in place would leave half of each, so the lab keeps the mode it was made with.
    """
    from labcore.inventory import load_inventory
    from labcore.paths import StateFileError

    if not inventory_path.exists():
        return
    try:
        made = load_inventory(inventory_path).auth
    except StateFileError:
        return  # no mode can be read from it; this `lab up` writes it again from the lab's tags
    if made != spec.auth:
        raise LabError(f"{config_path}: auth: {spec.auth}, but lab {spec.name} was made with auth: {made}; a lab "
                       f"does not switch: put `auth: {made}` back, or `lab down` first for a new {spec.auth} lab")
