"""`lab down`: delete every resource tagged with the lab's name, and nothing else; forget the lab here."""

from __future__ import annotations

from lab.commands.common import context, say


def run(args) -> int:
    if args.expired:
        return down_expired(args)
    ctx = context(args, lock=True)
    from lab import teardown

    if not ctx.target.connect():
        removed = ctx.target.down_without_api(ctx.paths, say)
        ctx.paths.forget()
        say(f"the {ctx.target.name} target was not running; removed what it left on this machine:" if removed
            else f"the {ctx.target.name} target was not running and left nothing behind")
        for line in removed:
            say(f"  {line}")
        return 0
    report = teardown.down(ctx.spec.name, ctx.spec.region, ctx.target, progress=say)
    ctx.target.after_down(say)
    ctx.paths.forget()
    if report.removed:
        say(f"removed {len(report.removed)} resources: " + ", ".join(report.removed))
    else:
        say(f"nothing of lab {ctx.spec.name} was left to remove")
    from lab.ec2 import retry_summary

    if retry_summary():
        say(retry_summary())
    return 0


def down_expired(args) -> int:
    """Every expired lab of the region, found by tags, removed; never an unexpired one, never an untagged resource."""
    ctx = context(args)
    if not ctx.target.connect():
        say(f"the {ctx.target.name} target is not running: no lab exists there")
        return 0
    from lab import teardown
    from lab.labs import find_labs

    labs = [row for row in find_labs(ctx.target.ec2_client(ctx.spec.region)) if row.expired()]
    if not labs:
        say(f"no expired lab in {ctx.spec.region}")
        return 0
    for row in labs:
        say(f"lab {row.name} expired {row.expires_at:%Y-%m-%dT%H:%M:%SZ}: removing it")
        report = teardown.down(row.name, ctx.spec.region, ctx.target, progress=say)
        say(f"removed {len(report.removed)} resources of lab {row.name}")
    ctx.target.after_down(say)
    say(f"{len(labs)} expired labs removed: {', '.join(r.name for r in labs)}")
    return 0
