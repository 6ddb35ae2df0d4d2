"""Message queue on the controller (guide: environment, message queue): user openstack."""

from __future__ import annotations

import shlex

from bootstrap.context import PlanContext, enable_units
from bootstrap.plan import Step


def steps(ctx: PlanContext) -> list[Step]:
    password = shlex.quote(ctx.secrets["rabbit_pass"])
    # change_password keeps a re-run right after a new secret; add_user fails when the user exists.
    user = (f"rabbitmqctl -q list_users | grep -q '^openstack\\b' && rabbitmqctl change_password openstack {password}"
            f" || rabbitmqctl add_user openstack {password}")
    # The check proves the password too: authenticate_user fails on a wrong one.
    check = (f"rabbitmqctl -q authenticate_user openstack {password} >/dev/null 2>&1"
             " && rabbitmqctl -q list_user_permissions openstack | grep -q '\\.\\*\\s\\+\\.\\*\\s\\+\\.\\*'")
    return [Step(name="rabbitmq-user", phase="controller-services", hosts=(ctx.controller.name,),
                 commands=(enable_units("rabbitmq-server"), "systemctl start rabbitmq-server", user,
                           'rabbitmqctl set_permissions openstack ".*" ".*" ".*"'),
                 check=check)]
