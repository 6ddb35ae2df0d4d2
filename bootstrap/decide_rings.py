"""The plan's Ring action decided from what ring_facts.py reads on the controller. Pure.

A ring that does not exist yet is made with the guide's commands (create, add every
device, rebalance). A ring that exists is never built anew: that would move every
partition at once, and objects would be unreadable until the replicators caught up.
Changing an existing ring (devices added, weights, a drain) is the ring changes' job after
the install's phases (bootstrap/ring_moves.py decides, bootstrap/ring_changes.py runs), one
safe step at a time: here it is only named, a line that `lab install --check` counts as a
change (a real run sends nothing for it). What the lab must not guess its way out of (a
builder it cannot read beside a ring file, another partition power) is refused in one
line; and the build itself stops before anything if a ring file exists after all.
"""

from __future__ import annotations

import json
import shlex

from bootstrap import hostprograms
from bootstrap.actions import Ring, RingDevice
from bootstrap.changes import Change, Refused, Run
from bootstrap.facts import Fact, OutputFact
from bootstrap.render import join, ring_builder, ring_rebalance


PENDING = "done by the ring changes after the install's phases"  # ends the line of a ring that awaits them


def ring_facts_command(action: Ring) -> str:
    """ring_facts.py's JSON; `{}` where swift is not installed yet (no swift_dir: no ring to lose)."""
    d = shlex.quote(action.swift_dir)
    program = hostprograms.call(action.python, "ring_facts.py", action.swift_dir)
    return f"if [ -d {d} ]; then {program}; else echo '{{}}'; fi"


def facts_for(action: Ring) -> list[Fact]:
    return [OutputFact(ring_facts_command(action))]


def _found(action: Ring, answers: dict) -> dict:
    """This ring's {"builder", "ring"} as ring_facts.py read them ({} when it could not: a fresh host)."""
    out = answers[OutputFact(ring_facts_command(action))]
    try:
        return (json.loads(out.stdout).get(action.name) or {}) if out.ok else {}
    except (ValueError, AttributeError):
        return {}


def never_over_a_ring(ring_file: str) -> str:
    """The build's first command: it stops there if a ring file exists after all (whatever the facts
    said, e.g. a host that could not run ring_facts.py): a ring file may place data."""
    r = shlex.quote(ring_file)
    return (f"if [ -e {r} ]; then echo {shlex.quote(ring_file + ' exists: the lab does not build a ring over it')} "
            f">&2; exit 1; fi")


def add_command(builder: str, dev: RingDevice, zone: int | None = None) -> str:
    return ring_builder(builder, "add", "--region", dev.region, "--zone", dev.zone if zone is None else zone,
                        "--ip", dev.ip, "--port", dev.port, "--device", dev.device, "--weight", number(dev.weight))


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _key(dev) -> tuple:
    if isinstance(dev, RingDevice):
        return (dev.ip, dev.port, dev.device)
    return (str(dev["ip"]), int(dev["port"]), str(dev["device"]))


def pending(action: Ring, builder: dict, current: dict | None) -> list[str]:
    """What the ring changes will do to an existing ring, in words ([]: it is as the plan says)."""
    wanted = {_key(d): d for d in action.devices}
    have = {_key(d): d for d in builder.get("devs") or []}
    found = [f"add {d.ip}/{d.device}" for k, d in wanted.items() if k not in have]
    found += [f"weight {number(d.weight)} for {d.ip}/{d.device}" for k, d in wanted.items()
              if k in have and float(have[k]["weight"]) != d.weight]
    found += [f"drain and remove {d['ip']}/{d['device']}" for k, d in have.items() if k not in wanted]
    if float(builder.get("replicas") or 0) < action.replicas:
        found.append(f"{action.replicas} replicas")
    if builder.get("min_part_hours") != action.min_part_hours:
        found.append(f"min_part_hours {action.min_part_hours}")
    ring_devs = {(_key(d), float(d["weight"])) for d in (current or {}).get("devs") or []}
    if not found and (builder.get("devs_changed") or current is None or ring_devs != {
            (_key(d), float(d["weight"])) for d in builder.get("devs") or []}):
        found.append("rebalance")
    return found


def ring(action: Ring, answers: dict, ctx) -> Change | None:
    """Create a ring that does not exist; name the changes an existing one awaits; refuse the rest."""
    found = _found(action, answers)
    builder_file, ring_file = f"{action.swift_dir}/{action.name}.builder", f"{action.swift_dir}/{action.name}.ring.gz"
    builder, current = found.get("builder"), found.get("ring")
    if builder is None and current is not None:
        raise Refused(f"{builder_file} is missing or unreadable but {ring_file} is there: the lab does not build "
                      f"a ring anew over one that may place data; put the builder back from a copy (or remove "
                      f"{ring_file} if the lab holds no object), then run `lab install` again")
    if builder is not None:
        if builder.get("part_power") != action.part_power:
            raise Refused(f"{builder_file} has partition power {builder.get('part_power')}, the lab's rings "
                          f"{action.part_power}: a ring's partition power cannot change without moving every "
                          f"object; rebuild the lab (`lab down`, `lab up`) or the ring by hand")
        waiting = pending(action, builder, current)
        if not waiting:
            return None
        return Change(action, f"{action.name} ring: {', '.join(waiting)}"[:200 - len(PENDING) - 2] + f": {PENDING}",
                      changes_host=ctx.check)
    commands = [never_over_a_ring(ring_file), join(["rm", "-f", builder_file]),
                ring_builder(builder_file, "create", action.part_power, action.replicas, action.min_part_hours),
                *(add_command(builder_file, d) for d in action.devices), ring_rebalance(builder_file)]
    return Change(action, f"build the {action.name} ring with {len(action.devices)} devices: no builder file",
                  tuple(Run(c) for c in commands), group="rings")
