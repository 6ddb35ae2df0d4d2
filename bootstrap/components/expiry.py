"""The lab's expiry on every host (not a guide chapter): a systemd timer that powers the host off.

The time is the lab:expires-at tag, copied into the inventory by `lab up` or `lab extend`;
the instance was launched with InstanceInitiatedShutdownBehavior=terminate, so powering
off ends it and its DeleteOnTermination volumes: a forgotten lab stops costing by itself,
with no laptop and no `lab down` needed. A lab that never expires has no timer.
"""

from __future__ import annotations

from bootstrap.actions import Command, FileSpec, Service
from bootstrap.context import PlanContext
from bootstrap.plan import Step
from lab import expiry

UNIT_DIR = "/etc/systemd/system"
TIMER = f"{UNIT_DIR}/{expiry.TIMER_UNIT}"
SERVICE = f"{UNIT_DIR}/{expiry.SERVICE_UNIT}"


def timer_step(ctx: PlanContext) -> Step:
    moment = expiry.parse_tag(ctx.inventory.expires_at)
    if moment is None:
        gone = Command((f"systemctl disable --now {expiry.TIMER_UNIT} 2>/dev/null || true",
                        f"rm -f {TIMER} {SERVICE}", "systemctl daemon-reload"),
                       unless=f"! test -e {TIMER}", after_change=False,
                       what="no expiry: no timer powers the host off")
        return Step("expiry-timer", "base", ctx.hosts(), (gone,))
    units = expiry.timer_units(moment)
    actions = (FileSpec(TIMER, units[expiry.TIMER_UNIT]), FileSpec(SERVICE, units[expiry.SERVICE_UNIT]),
               Service((expiry.TIMER_UNIT,), daemon_reload=True))
    return Step("expiry-timer", "base", ctx.hosts(), actions)
