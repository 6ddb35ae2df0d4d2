"""`lab list`: every lab in the region, found by tags (no local state needed)."""

from __future__ import annotations

import json

from rich.table import Table

from lab import expiry
from lab.commands.common import console, context, say


def list_labs(args) -> int:
    ctx = context(args)
    if not ctx.target.connect():
        if args.json:
            print("[]")  # JSON still: a script reading it needs no special case
        else:
            say(f"the {ctx.target.name} target is not running: no lab exists there")
        return 0
    from lab.labs import find_labs

    rows = find_labs(ctx.target.ec2_client(ctx.spec.region))
    now = expiry.now()
    data = [{"name": r.name, "nodes": r.nodes, "state": r.state,
             "age": expiry.duration(now - r.launched) if r.launched else None,
             "launched": r.launched.isoformat() if r.launched else None,
             "expires_at": expiry.tag_value(r.expires_at) if r.expires_at else None,
             "expired": r.expired(now), "price_per_hour": r.estimate(ctx.spec.region).per_hour,
             "volumes": r.volumes, "security_groups": r.security_groups, "key_pairs": r.key_pairs}
            for r in rows]
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    table = Table(title=f"labs in {ctx.spec.region} ({ctx.target.name})")
    for column in ("lab", "nodes", "age", "expires", "price/hour", "state"):
        table.add_column(column, no_wrap=True)
    for row in data:
        expires = "expired" if row["expired"] else (row["expires_at"] or "never")
        price = "unknown" if row["price_per_hour"] is None else f"${row['price_per_hour']:.3f}"
        table.add_row(row["name"], str(row["nodes"]), row["age"] or "-", expires, price, row["state"])
    console.print(table)
    expired = [r["name"] for r in data if r["expired"]]
    say(f"{len(data)} labs" + (f"; expired: {', '.join(expired)} (`lab down --expired` removes them)" if expired else ""))
    return 0
