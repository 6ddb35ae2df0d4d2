"""The whole install as one Plan: the guide's chapters in the guide's order."""

from __future__ import annotations

from bootstrap.components import (
    base,
    database,
    etcd,
    finalize,
    keystone,
    memcached,
    messaging,
    packages,
    swift_proxy,
    swift_rings,
    swift_storage,
)
from bootstrap.context import PlanContext
from bootstrap.plan import Plan
from labcore.inventory import Inventory
from labcore.secrets import Secrets

COMPONENTS = (base, packages, database, messaging, memcached, etcd, keystone,
              swift_proxy, swift_storage, swift_rings, finalize)


def build_plan(inventory: Inventory, secrets: Secrets) -> Plan:
    ctx = PlanContext.for_inventory(inventory, secrets)
    return Plan(tuple(step for component in COMPONENTS for step in component.steps(ctx)))


def host_plan(inventory: Inventory) -> Plan:
    """The hosts' base state alone (host programs, first boot done, hostname, /etc/hosts):
    what `lab up` runs before it prepares the Swift volumes, the same steps `lab install`
    starts with. It needs no secret."""
    ctx = PlanContext.for_inventory(inventory, Secrets({}))
    return Plan(tuple(base.host_steps(ctx)))
