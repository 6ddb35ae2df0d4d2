"""Decisions about what lives in the cloud's own stores: rows in MariaDB, entities in
Keystone, devices in Swift's rings. Pure, like bootstrap/decide.py.

The facts are the stores' own answers (a query on the keystone database, what
ring_facts.py reads from the builder and ring files); the lab computes from them the
commands the guide types, and only those it still needs.
"""

from __future__ import annotations

import json

from bootstrap import hostprograms
from bootstrap.actions import (
    OpenStack,
    Ring,
    RingDevice,
    Sql,
    SqlQuery,
    describe_openstack,
)
from bootstrap.changes import BatchEntry, Change, Run, Send
from bootstrap.facts import CheckFact, Fact, OutputFact
from bootstrap.render import (
    digest_matches,
    digest_record,
    join,
    mysql,
    ring_builder,
    ring_rebalance,
)


def facts_for(action) -> list[Fact]:
    if isinstance(action, Sql):
        return [OutputFact(_done_query(action))]
    if isinstance(action, OpenStack):
        return ([OutputFact(_exists_query(action))] if action.exists else []) + (
            [CheckFact(digest_matches(action.stamp, join(action.update)))] if action.update else [])
    if isinstance(action, Ring):
        return [OutputFact(ring_facts_command(action))]
    raise TypeError(f"not an action: {action!r}")


# ------------------------------------------------------------------ SQL
def _done_query(action: Sql) -> str:
    return f"{mysql(action.done)} 2>/dev/null"


def sql(action: Sql, answers: dict, ctx) -> Change | None:
    out = answers[OutputFact(_done_query(action))]
    said = out.stdout.strip().splitlines()[:1]
    if out.ok and said == [action.expect]:
        return None
    now = f"the database answers {said[0]!r}" if out.ok and said else "the database does not say so"
    return Change(action, f"{action.what} (SQL): {now}"[:200],
                  (Run(mysql(SqlQuery(action.statement, action.database))),))


# ------------------------------------------------------------------ openstack
def _exists_query(action: OpenStack) -> str:
    return f"{mysql(SqlQuery(action.exists, 'keystone'))} 2>/dev/null"


def _counted(stdout: str) -> bool:
    first = (stdout.split() or ["0"])[0]
    return first.isdigit() and int(first) != 0


def openstack(action: OpenStack, answers: dict, ctx) -> Change | None:
    present = action.exists is not None and answers[OutputFact(_exists_query(action))].ok and _counted(
        answers[OutputFact(_exists_query(action))].stdout)
    recorded = action.update is None or answers[CheckFact(digest_matches(action.stamp, join(action.update)))]
    if present and recorded:
        return None
    sends: list[Send] = []
    if not present:
        says = describe_openstack(action.argv) + (": it does not exist" if action.exists else "")
        sends.append(BatchEntry(action.argv, action.exists, action.python, action.openrc))
        if action.exists:
            sends.append(Run(_confirm(action)))
    else:
        says = f"{describe_openstack(action.update)}: the lab has no record of setting its current secret"
        sends.append(BatchEntry(action.update, None, action.python, action.openrc))
    if action.update:
        sends.append(Run(digest_record(action.stamp, join(action.update))))
    return Change(action, says[:200], tuple(sends), group="openstack")


def _confirm(action: OpenStack) -> str:
    """After the batch: the database now counts the entity, or the step fails saying which."""
    message = join([f"{describe_openstack(action.argv)}: not in keystone's database after the openstack command"])
    return (f'n=$({mysql(SqlQuery(action.exists, "keystone"))}) && [ "${{n:-0}}" != 0 ] '
            f"|| {{ echo {message} >&2; exit 1; }}")


def batch(changes: list[Change]) -> list[Send]:
    """One openstack_batch.py process for the openstack commands of consecutive changes,
    then, in one more round trip, what each change does after its command (confirm, record):
    each confirmation exits at once, naming its entity, when it fails."""
    entries = [s for c in changes for s in c.sends if isinstance(s, BatchEntry)]
    first = entries[0]
    program = hostprograms.call(first.python, "openstack_batch.py")
    sends: list[Send] = [Run(f". {first.openrc} && {program}", stdin=json.dumps([e.as_json() for e in entries]))]
    after = [s.command for c in changes for s in c.sends if isinstance(s, Run)]
    return sends + ([Run("\n".join(after))] if after else [])


# ------------------------------------------------------------------ rings
def ring_facts_command(action: Ring) -> str:
    return hostprograms.call(action.python, "ring_facts.py", action.swift_dir)


def _key(dev) -> tuple:
    if isinstance(dev, RingDevice):
        return (dev.region, dev.zone, dev.ip, dev.port, dev.device)
    return (int(dev["region"]), int(dev["zone"]), str(dev["ip"]), int(dev["port"]), str(dev["device"]))


def _weights(devs) -> dict[tuple, float]:
    return {_key(d): float(d.weight if isinstance(d, RingDevice) else d["weight"]) for d in devs if d}


def _read(action: Ring, answers: dict) -> tuple[dict | None, dict | None]:
    out = answers[OutputFact(ring_facts_command(action))]
    try:
        found = json.loads(out.stdout).get(action.name) or {} if out.ok else {}
    except (ValueError, AttributeError):
        found = {}
    return found.get("builder"), found.get("ring")


def _rebuild(action: Ring, builder: dict | None) -> str:
    """Why the builder must be made anew ("" when it can be kept)."""
    if builder is None:
        return "no builder file"
    for name, wanted, have in (("partition power", action.part_power, builder.get("part_power")),
                               ("replicas", float(action.replicas), float(builder.get("replicas") or 0)),
                               ("min_part_hours", action.min_part_hours, builder.get("min_part_hours"))):
        if have != wanted:
            return f"{name} {have} (the plan: {wanted})"
    wanted, have = _weights(action.devices), _weights(builder.get("devs") or [])
    extra = sorted(set(have) - set(wanted))
    if extra:
        return f"{len(extra)} devices the lab does not have (e.g. {extra[0][2]}/{extra[0][4]})"
    if any(have[k] != wanted[k] for k in have):
        return "device weights differ"
    return ""


def _stale(action: Ring, builder: dict, ring: dict | None) -> str:
    if builder.get("devs_changed"):
        return "devices changed since the last rebalance"
    if ring is None:
        return "no ring file"
    if ring.get("part_power") != builder.get("part_power") or float(ring.get("replica_count") or 0) != float(
            builder.get("replicas") or 0):
        return "the ring file does not match its builder"
    if _weights(ring.get("devs") or []) != _weights(builder.get("devs") or []):
        return "the ring file's devices are not the builder's"
    return ""


def _add(builder: str, dev: RingDevice) -> str:
    return ring_builder(builder, "add", "--region", dev.region, "--zone", dev.zone, "--ip", dev.ip, "--port",
                        dev.port, "--device", dev.device, "--weight", _number(dev.weight))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def ring(action: Ring, answers: dict, ctx) -> Change | None:
    builder_file = f"{action.swift_dir}/{action.name}.builder"
    ring_file = f"{action.swift_dir}/{action.name}.ring.gz"
    builder, current = _read(action, answers)
    why = _rebuild(action, builder)
    if why:
        commands = [join(["rm", "-f", builder_file, ring_file]),
                    ring_builder(builder_file, "create", action.part_power, action.replicas, action.min_part_hours),
                    *(_add(builder_file, d) for d in action.devices), ring_rebalance(builder_file)]
        says = f"build the {action.name} ring with {len(action.devices)} devices: {why}"
    else:
        have = set(_weights(builder.get("devs") or []))
        missing = [d for d in action.devices if _key(d) not in have]
        stale = _stale(action, builder, current)
        if not missing and not stale:
            return None
        commands = [*(_add(builder_file, d) for d in missing), ring_rebalance(builder_file)]
        added = f"add {', '.join(f'{d.ip}/{d.device}' for d in missing)}, " if missing else ""
        says = f"{action.name} ring: {added}rebalance" + (f" ({stale})" if stale else "")
    return Change(action, says[:200], tuple(Run(c) for c in commands), group="rings")
