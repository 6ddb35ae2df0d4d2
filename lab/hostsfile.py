"""/etc/hosts with every node's private IP (guide: environment, host networking)."""

from __future__ import annotations

from labcore.inventory import Inventory

BEGIN = "# BEGIN openstack-ec2-lab"
END = "# END openstack-ec2-lab"


def render_hosts(existing: str, inventory: Inventory) -> str:
    """existing with the lab's block replaced and the image's 127.0.1.1 line commented out (as the guide says)."""
    kept, inside = [], False
    for line in existing.splitlines():
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            kept.append(f"# {line}" if line.split()[:1] == ["127.0.1.1"] else line)
    block = [BEGIN] + [f"{n.private_ip} {n.name}" for n in inventory.nodes] + [END]
    return "\n".join(kept + block) + "\n"
