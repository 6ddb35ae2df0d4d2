"""Message queue on the controller (guide: environment, message queue): user openstack."""

from __future__ import annotations

import shlex

from bootstrap import guide
from bootstrap.actions import Command, Service
from bootstrap.context import PlanContext
from bootstrap.plan import Step


def steps(ctx: PlanContext) -> list[Step]:
    password = shlex.quote(ctx.secrets["rabbit_pass"])
    # change_password keeps a re-run right after a new secret; add_user fails when the user exists.
    user = (f"rabbitmqctl -q list_users | grep -q '^openstack\\b' && rabbitmqctl change_password openstack {password}"
            f" || rabbitmqctl add_user openstack {password}")
    # authenticate_user fails on a wrong password: it proves the password, not only the user.
    return [Step("rabbitmq-user", "controller-services", (ctx.controller.name,), (
        Service(("rabbitmq-server",), start_only=True),
        Command((user,), f"rabbitmqctl -q authenticate_user openstack {password} >/dev/null 2>&1",
                after_change=False, what="add the rabbitmq user openstack (or set its password)"),
        Command(('rabbitmqctl set_permissions openstack ".*" ".*" ".*"',),
                "rabbitmqctl -q list_user_permissions openstack | grep -q '\\.\\*\\s\\+\\.\\*\\s\\+\\.\\*'",
                after_change=False, what="permit the openstack user configure, write and read on everything"),
    ), guide=guide.MESSAGING)]
