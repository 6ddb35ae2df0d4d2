"""The lab's expiry on every host (not a guide chapter): a systemd timer that powers the host off.

The time is the lab:expires-at tag, copied into the inventory by `lab up` or `lab extend`;
the instance was launched with InstanceInitiatedShutdownBehavior=terminate, so powering
off ends it and its DeleteOnTermination volumes: a forgotten lab stops costing by itself,
with no laptop and no `lab down` needed. A lab that never expires has no timer.

This timer takes over from the launch-time one (lab/userdata.py): the step writes
expiry.HANDOVER_FILE and stops lab-expiry-launch.timer, so a time `lab extend` moved later
is not cut short by the launch's (lab/expiry.py). With no expiry the file is written only
where the launch timer runs (a lab launched with an expiry, extended to never since).
"""

from __future__ import annotations

import shlex

from bootstrap.actions import Command, FileSpec, Service
from bootstrap.context import PlanContext
from bootstrap.plan import Step
from lab import expiry

UNIT_DIR = "/etc/systemd/system"
TIMER = f"{UNIT_DIR}/{expiry.TIMER_UNIT}"
SERVICE = f"{UNIT_DIR}/{expiry.SERVICE_UNIT}"


def _launch_timer_stands_down(*first: str) -> Command:
    """Stop the launch-time timer where it runs (first: what to do before)."""
    return Command((*first, f"systemctl stop {expiry.LAUNCH_UNIT}.timer"),
                   unless=f"! {expiry.launch_timer_active()}", after_change=False,
                   what=f"the launch-time {expiry.LAUNCH_UNIT}.timer stands down (stopped where it runs)")


def timer_step(ctx: PlanContext) -> Step:
    moment = expiry.parse_tag(ctx.inventory.expires_at)
    if moment is None:
        gone = Command((f"systemctl disable --now {expiry.TIMER_UNIT} 2>/dev/null || true",
                        f"rm -f {TIMER} {SERVICE}", "systemctl daemon-reload"),
                       unless=f"! test -e {TIMER}", after_change=False,
                       what="no expiry: no timer powers the host off")
        folder = expiry.HANDOVER_FILE.rsplit("/", 1)[0]
        handover = _launch_timer_stands_down(
            f"mkdir -p {folder} && printf '%s' {shlex.quote(expiry.HANDOVER_NOTE)} > {expiry.HANDOVER_FILE}")
        return Step("expiry-timer", "base", ctx.hosts(), (gone, handover))
    units = expiry.timer_units(moment)
    actions = (FileSpec(TIMER, units[expiry.TIMER_UNIT]), FileSpec(SERVICE, units[expiry.SERVICE_UNIT]),
               Service((expiry.TIMER_UNIT,), daemon_reload=True),
               FileSpec(expiry.HANDOVER_FILE, expiry.HANDOVER_NOTE), _launch_timer_stands_down())
    return Step("expiry-timer", "base", ctx.hosts(), actions)
