"""Decisions about what lives in the cloud's own stores: rows in MariaDB, entities in
Keystone (Swift's rings: bootstrap/decide_rings.py). Pure, like bootstrap/decide.py.

The facts are the stores' own answers (a query on the keystone database); the lab
computes from them the commands the guide types, and only those it still needs.
"""

from __future__ import annotations

import json

from bootstrap import hostprograms
from bootstrap.actions import (
    OpenStack,
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
)


def facts_for(action) -> list[Fact]:
    if isinstance(action, Sql):
        return [OutputFact(_done_query(action))]
    if isinstance(action, OpenStack):
        return ([OutputFact(_exists_query(action))] if action.exists else []) + (
            [CheckFact(digest_matches(action.stamp, join(action.update)))] if action.update else [])
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
