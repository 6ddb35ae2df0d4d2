"""The lab's EC2 tag keys, written once: lab/ tags and finds by them, twin/ reads them.

Tags are the source of truth of what belongs to a lab (README, "What `lab up` creates"):
nothing without NAME is ever changed or deleted by the lab.
"""

from __future__ import annotations

NAME = "lab:name"  # every resource of a lab: its name
NODE = "lab:node"  # instances and their volumes: the node (hostname) they belong to
ROLE = "lab:role"  # controller or object
VOLUME = "lab:volume"  # volumes: the Swift device name, or "root" for an instance's root volume
SSH_USER = "lab:ssh-user"  # instances: the login user of their image
EXPIRES_AT = "lab:expires-at"  # every resource: when the lab stops itself (UTC, ISO 8601), absent = never
EXPIRES_AFTER = "lab:expires-after"  # every resource: the config's expires_after at the last `lab up`
DRAINED = "lab:drained"  # an instance or volume the config no longer has, emptied by `lab install`: `lab up` removes it
ROOT_VOLUME = "root"
# Keys the lab owns; a config's own tags may not use them (AWS owns aws:*).
RESERVED_PREFIXES = ("lab:", "aws:")


def lab_tags(lab: str, node: str | None = None, role: str | None = None,
             extra: dict[str, str] | None = None) -> dict[str, str]:
    """The tags of one resource: the config's own first, the lab's over them."""
    tags = dict(extra or {})
    tags.update({NAME: lab, "Name": f"{lab}-{node}" if node else lab})
    if node:
        tags[NODE] = node
    if role:
        tags[ROLE] = role
    return tags


def tag_spec(resource_type: str, tags: dict[str, str]) -> dict:
    """EC2's TagSpecifications entry: tagged at creation, never a moment untagged."""
    return {"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


def lab_filter(lab: str) -> list[dict]:
    return [{"Name": f"tag:{NAME}", "Values": [lab]}]


def tags_of(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}
