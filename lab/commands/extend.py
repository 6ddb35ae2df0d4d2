"""`lab extend DURATION`: the lab now expires DURATION from now, on its tags and on every host."""

from __future__ import annotations

from lab import expiry
from lab.commands.common import context, say, warn
from lab.commands.lifetime import expiry_line
from lab.config_values import expires_after_text, parse_expiry
from labcore import tags as tag
from labcore.errors import LabError, NotAvailableError
from labcore.inventory import load_inventory, save_inventory


def run(args) -> int:
    try:
        length = parse_expiry(expires_after_text(args.duration))
    except ValueError as exc:
        raise LabError(f"lab extend {args.duration!r}: {exc}") from None
    ctx = context(args, lock=True)
    if not ctx.target.connect():
        raise NotAvailableError(f"the {ctx.target.name} target is not running: there is no lab to extend")
    from lab.discovery import find_lab
    from lab.retag import set_expiry_tags

    ec2 = ctx.target.ec2_client(ctx.spec.region)
    found = find_lab(ec2, ctx.spec.name)
    if found.is_empty():
        raise LabError(f"lab {ctx.spec.name} has no resources in {ctx.spec.region}: nothing to extend (`lab up` makes it)")
    moment = expiry.expires_at(length)
    # lab:expires-after stays the config's: the next `lab up` keeps this time unless the config changes.
    after = next((t[tag.EXPIRES_AFTER] for t in found.expiry_tags.values() if tag.EXPIRES_AFTER in t),
                 ctx.spec.expires_after)
    tags = {tag.EXPIRES_AT: expiry.tag_value(moment), tag.EXPIRES_AFTER: after} if moment else {}
    set_expiry_tags(ec2, list(found.expiry_tags), tags, say)
    _update_hosts(ctx, moment, args.no_ssh)
    say(expiry_line(moment, moved=True))
    return 0


def _update_hosts(ctx, moment, no_ssh: bool) -> None:
    """The inventory's time, and every host's timer, through the base steps `lab up` runs."""
    if not ctx.paths.inventory.exists():
        say("no inventory here: the hosts' timers keep their time until `lab up` runs from this checkout")
        return
    inventory = load_inventory(ctx.paths.inventory, progress=warn)
    inventory = inventory.model_copy(update={"expires_at": expiry.tag_value(moment) if moment else None})
    save_inventory(inventory, ctx.paths.inventory)
    if no_ssh:
        say("--no-ssh: the hosts' timers keep their old time until `lab up` (or `lab extend` without --no-ssh)")
        return
    from bootstrap.planner import host_plan
    from bootstrap.runner import run_plan
    from lab.keypair import require_private_key
    from lab.ssh import fabric_factory
    from labcore.secrets import Secrets

    require_private_key(ctx.paths, warn)
    report = run_plan(host_plan(inventory), inventory, fabric_factory(inventory), Secrets({}), log_dir=ctx.paths.logs,
                      progress=say, title="lab extend")
    report.raise_for_failure()
