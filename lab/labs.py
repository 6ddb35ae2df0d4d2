"""Every lab in a region, found by its tags alone: what `lab list` shows and `lab down --expired` removes.

Four describes (each paged) whatever the number of labs: instances, volumes, security groups
and key pairs that carry a lab:name tag, grouped by that tag. Nothing without the tag is
ever counted, so a person's resources can never be listed as a lab's, or removed as one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from lab import cost, expiry
from lab.ec2 import with_retry
from labcore import tags as tag
from labcore.tags import tags_of

_HAS_LAB_TAG = [{"Name": "tag-key", "Values": [tag.NAME]}]
LIVE = ("pending", "running", "stopping", "stopped")


@dataclass
class LabRow:
    name: str
    states: Counter = field(default_factory=Counter)  # instance state -> count (live ones)
    launched: datetime | None = None  # the earliest live instance's LaunchTime
    expires_at: datetime | None = None  # the latest lab:expires-at on any of its resources
    instance_types: Counter = field(default_factory=Counter)
    volume_gb: Counter = field(default_factory=Counter)
    volumes: int = 0
    security_groups: int = 0
    key_pairs: int = 0

    @property
    def nodes(self) -> int:
        return sum(self.states.values())

    @property
    def state(self) -> str:
        """running, pending, stopped, ... (several: "2 running, 1 pending"), or "no instances"."""
        if not self.states:
            return "no instances"
        if len(self.states) == 1:
            return next(iter(self.states))
        return ", ".join(f"{n} {s}" for s, n in sorted(self.states.items()))

    def expired(self, at: datetime | None = None) -> bool:
        return expiry.is_expired(self.expires_at, at)

    def estimate(self, region: str) -> cost.Estimate:
        return cost.estimate(cost.Usage(Counter(self.instance_types), Counter(self.volume_gb), self.nodes), region)

    def _saw_expiry(self, value: str | None) -> None:
        moment = expiry.parse_tag(value)
        if moment is not None and (self.expires_at is None or moment > self.expires_at):
            self.expires_at = moment


def _pages(ec2, operation: str, key: str, **kwargs) -> list[dict]:
    pages = ec2.get_paginator(operation).paginate(**kwargs)
    return [item for page in with_retry(lambda: list(pages)) for item in page[key]]


def find_labs(ec2) -> list[LabRow]:
    """Every lab of the region, by name."""
    rows: dict[str, LabRow] = {}

    def row(resource: dict) -> tuple[LabRow, dict]:
        tags = tags_of(resource)
        found = rows.setdefault(tags[tag.NAME], LabRow(tags[tag.NAME]))
        found._saw_expiry(tags.get(tag.EXPIRES_AT))
        return found, tags

    for reservation in _pages(ec2, "describe_instances", "Reservations", Filters=_HAS_LAB_TAG):
        for instance in reservation["Instances"]:
            state = instance["State"]["Name"]
            if state not in LIVE:  # terminated: no longer the lab's, nor billed
                continue
            lab, _ = row(instance)
            lab.states[state] += 1
            lab.instance_types[instance["InstanceType"]] += 1
            launched = instance.get("LaunchTime")
            if launched is not None and (lab.launched is None or launched < lab.launched):
                lab.launched = launched
    for volume in _pages(ec2, "describe_volumes", "Volumes", Filters=_HAS_LAB_TAG):
        lab, _ = row(volume)
        lab.volumes += 1
        lab.volume_gb[volume.get("VolumeType", "gp3")] += int(volume["Size"])
    for group in with_retry(ec2.describe_security_groups, Filters=_HAS_LAB_TAG)["SecurityGroups"]:
        row(group)[0].security_groups += 1
    for key in with_retry(ec2.describe_key_pairs, Filters=_HAS_LAB_TAG)["KeyPairs"]:
        row(key)[0].key_pairs += 1
    return [rows[name] for name in sorted(rows)]
