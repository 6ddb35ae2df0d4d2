"""The whole install as one Plan: the guide's chapters in the guide's order."""

from __future__ import annotations

from bootstrap.components import (
    base,
    dashboard,
    database,
    etcd,
    finalize,
    front_door,
    keystone,
    memcached,
    messaging,
    packages,
    swift_proxy,
    swift_rings,
    swift_storage,
    tempauth,
)
from bootstrap.context import PlanContext
from bootstrap.plan import Plan
from labcore.inventory import Inventory
from labcore.lab_ca import KeyAndCert
from labcore.secrets import Secrets

COMPONENTS = (base, packages, database, messaging, memcached, etcd, keystone,
              swift_proxy, front_door, dashboard, swift_storage, swift_rings, finalize)
# A Swift-only lab (auth: tempauth): what only Keystone needs is left out (tempauth.LEFT_OUT says why).
TEMPAUTH_CHAPTERS = (base.steps, tempauth.package_steps, memcached.steps, tempauth.steps, swift_storage.steps,
                     swift_rings.steps, finalize.steps)


def build_plan(inventory: Inventory, secrets: Secrets, door_cert: KeyAndCert | None = None,
               lab_ca_pem: bytes | None = None) -> Plan:
    """door_cert, lab_ca_pem: the front door's server pair and the lab's CA certificate
    (labcore/front_door_cert.py); without them the plan holds a line saying they are made later."""
    ctx = PlanContext.for_inventory(inventory, secrets, door_cert, lab_ca_pem)
    chapters = TEMPAUTH_CHAPTERS if inventory.auth == "tempauth" else tuple(c.steps for c in COMPONENTS)
    return Plan(tuple(step for chapter in chapters for step in chapter(ctx)))


def left_out(inventory: Inventory) -> tuple[tuple[str, str], ...]:
    """The guide's chapters this lab's plan leaves out, each with why (none for a Keystone lab)."""
    return tempauth.LEFT_OUT if inventory.auth == "tempauth" else ()


def host_plan(inventory: Inventory) -> Plan:
    """The hosts' base state alone (host programs, first boot done, hostname, /etc/hosts):
    what `lab up` runs before it prepares the Swift volumes, the same steps `lab install`
    starts with. It needs no secret."""
    ctx = PlanContext.for_inventory(inventory, Secrets({}))
    return Plan(tuple(base.host_steps(ctx)))
