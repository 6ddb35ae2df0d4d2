"""/etc/hosts with every node's private IP (guide: environment, host networking), as a marked block.

The merge runs here, on the lab's side, from the file's current content: a host needs no
program for it, and `lab install --check` can show the diff before anything is written.
"""

from __future__ import annotations

from labcore.inventory import Inventory

MARKER = "openstack-ec2-lab"
BEGIN = f"# BEGIN {MARKER}"
END = f"# END {MARKER}"
# The guide: "comment out or remove" the image's entry resolving the host's own name to 127.0.1.1.
COMMENT_OUT = ("127.0.1.1",)


def merge_block(existing: str, lines: tuple[str, ...] | list[str], marker: str = MARKER,
                comment_out: tuple[str, ...] = ()) -> str:
    """existing with the marked block replaced by lines (at the end), every other line kept,
    and lines whose first word is in comment_out commented out."""
    begin, end = f"# BEGIN {marker}", f"# END {marker}"
    kept, inside = [], False
    for line in existing.splitlines():
        if line.strip() == begin:
            inside = True
        elif line.strip() == end:
            inside = False
        elif not inside:
            kept.append(f"# {line}" if line.split()[:1] and line.split()[0] in comment_out else line)
    return "\n".join(kept + [begin, *lines, end]) + "\n"


def hosts_lines(inventory: Inventory) -> tuple[str, ...]:
    return tuple(f"{n.private_ip} {n.name}" for n in inventory.nodes)


def render_hosts(existing: str, inventory: Inventory) -> str:
    """existing with the lab's block replaced and the image's 127.0.1.1 line commented out (as the guide says)."""
    return merge_block(existing, hosts_lines(inventory), MARKER, COMMENT_OUT)
