"""`lab down`: delete every resource tagged with the lab's name, and nothing else; forget the lab here."""

from __future__ import annotations

from lab.commands.common import context, say


def run(args) -> int:
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
