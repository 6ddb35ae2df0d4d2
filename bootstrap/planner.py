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
