"""What a lab costs per hour, from the price table shipped with the project (lab/data/prices.yaml).

Pure arithmetic on a typed table: instances by type, EBS by GB-month over 730 hours, one
public IPv4 address per instance. Anything the table does not know makes the whole figure
"price unknown", naming what is missing: a cost line is never a guess.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict

from labcore import safeyaml

HOURS_PER_MONTH = 730


class RegionPrices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instances: dict[str, float]  # type -> USD per hour
    volumes: dict[str, float]  # EBS volume type -> USD per GB-month


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    date: str
    source: str
    public_ipv4_per_hour: float
    regions: dict[str, RegionPrices]


@lru_cache(maxsize=1)
def price_table() -> PriceTable:
    text = resources.files("lab").joinpath("data/prices.yaml").read_bytes()
    return PriceTable.model_validate(safeyaml.load(text))


@dataclass(frozen=True)
class Usage:
    """What is billed by the hour: instance types, EBS GiB by volume type, public IPv4 addresses."""

    instances: Counter = field(default_factory=Counter)  # type -> count
    volume_gb: Counter = field(default_factory=Counter)  # EBS type -> GiB
    public_ips: int = 0


@dataclass(frozen=True)
class Estimate:
    region: str
    per_hour: float | None  # None: price unknown
    missing: tuple[str, ...]  # what the table lacks, e.g. "t3.nano in ap-northeast-2"
    parts: tuple[str, ...]  # e.g. "2 x t3.medium $0.052/h"
    table_date: str

    @property
    def per_day(self) -> float | None:
        return None if self.per_hour is None else self.per_hour * 24

    def line(self) -> str:
        """One line: the price per hour and per day, or why it is unknown."""
        if self.per_hour is None:
            return (f"cost: price unknown ({', '.join(self.missing)} not in the price table of "
                    f"{self.table_date}: lab/data/prices.yaml)")
        return (f"cost: ${self.per_hour:.3f}/hour, ${self.per_day:.2f}/day in {self.region} "
                f"({'; '.join(self.parts)}; on-demand prices of {self.table_date})")

    def so_far(self, hours: float) -> str:
        return "unknown" if self.per_hour is None else f"${self.per_hour * hours:.2f}"


def usage_of_spec(spec) -> Usage:
    """What the config's lab would run: its instances, their root volumes and Swift volumes."""
    instances: Counter = Counter()
    gib: Counter = Counter()
    for node in spec.nodes.values():
        instances[node.type] += 1
        gib[spec.volume_type] += (node.root_volume_gb or spec.root_volume_gb) + sum(int(v) for v in node.volumes.values())
    return Usage(instances, gib, public_ips=len(spec.nodes))


def credits_note(spec) -> str | None:
    """What the hourly price leaves out: nodes with `unlimited: true` pay for CPU credits spent
    beyond their type's baseline, by use, so no price per hour holds it (said, never guessed).
    Every other burstable node is launched `standard`: out of credits it slows to the baseline."""
    unlimited = [name for name, node in spec.nodes.items() if node.unlimited]
    if not unlimited:
        return None
    return (f"plus CPU credits beyond the baseline, billed by use, for {', '.join(unlimited)} "
            f"(unlimited: true in the config)")


def estimate(usage: Usage, region: str, table: PriceTable | None = None) -> Estimate:
    table = table or price_table()
    prices = table.regions.get(region)
    if prices is None:
        return Estimate(region, None, (f"region {region}",), (), table.date)
    missing, parts, total = [], [], 0.0
    for kind, count in sorted(usage.instances.items()):
        price = prices.instances.get(kind)
        if price is None:
            missing.append(f"{kind} in {region}")
            continue
        total += price * count
        parts.append(f"{count} x {kind} ${price:g}/h")
    for kind, gib in sorted(usage.volume_gb.items()):
        price = prices.volumes.get(kind)
        if price is None:
            missing.append(f"EBS {kind} in {region}")
            continue
        total += price * gib / HOURS_PER_MONTH
        parts.append(f"{gib} GiB {kind} ${price:g}/GB-month")
    if usage.public_ips:
        total += table.public_ipv4_per_hour * usage.public_ips
        parts.append(f"{usage.public_ips} public IPv4 ${table.public_ipv4_per_hour:g}/h")
    if missing:
        return Estimate(region, None, tuple(missing), tuple(parts), table.date)
    return Estimate(region, total, (), tuple(parts), table.date)
