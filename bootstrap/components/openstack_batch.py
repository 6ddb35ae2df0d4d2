"""The guide's `openstack` commands as actions (keystone and swift chapters).

Each `openstack` call spends 2-5 s starting Python, loading its plugins and asking for a
token before it does a 0.1 s API call; the identity chapters make a dozen of them. So a
step's commands are written exactly as the guide types them (without the word
`openstack`), each with the query on Keystone's database that tells whether its entity
exists (0.1 s); the lab sends only the missing ones, all to one process on the
controller (bootstrap/host/openstack_batch.py) that runs them through the client's own
shell with one token.
"""

from __future__ import annotations

import shlex

from bootstrap.actions import OpenStack
from bootstrap.context import ADMIN_OPENRC, STAMP_DIR, PlanContext


def guide_command(ctx: PlanContext, text: str, exists: str) -> OpenStack:
    """A command as the guide types it (without the word `openstack`) and its existence query."""
    return OpenStack(tuple(shlex.split(text)), exists, python=ctx.profile.python, openrc=ADMIN_OPENRC)


def user(ctx: PlanContext, name: str, password: str) -> OpenStack:
    """The guide's `user create`; an existing user gets the current password once (the lab
    records that it set it), so a new secrets.yaml reaches Keystone, not only the configs."""
    return OpenStack(("user", "create", "--domain", "default", "--password", password, name),
                     f"SELECT count(*) FROM local_user WHERE domain_id='default' AND name='{name}'",
                     ("user", "set", "--password", password, name), f"{STAMP_DIR}/openstack-user-{name}.sha256",
                     ctx.profile.python, ADMIN_OPENRC)


def assignment_query(user_name: str, project: str, role: str) -> str:
    """Counts the role assignment `role add --project P --user U R` makes."""
    return ("SELECT count(*) FROM assignment a JOIN role r ON r.id=a.role_id JOIN local_user u ON u.user_id=a.actor_id"
            f" JOIN project p ON p.id=a.target_id WHERE a.type='UserProject' AND r.name='{role}'"
            f" AND u.name='{user_name}' AND u.domain_id='default' AND p.name='{project}' AND p.domain_id='default'")
