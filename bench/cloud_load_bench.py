"""A small load on a running lab's cloud: requests, errors and latency per number of clients.

    .venv/bin/python bench/cloud_load_bench.py [--config configs/lab.yaml] [--seconds 20] [--clients 1,4,8]

For each number of clients, bootstrap/host/cloud_load.py runs on the controller (installed
there by `lab install`) with the demo user: every client issues Keystone tokens and puts and
gets 4 KiB objects through the Swift proxy for --seconds, its connections reused as the
OpenStack clients reuse them. The table shows requests, requests per second, errors (which
must be 0) and p50/p99 latency of each operation. Exit 1 when any request failed.

The lab must be up and installed (`make lab-up lab-install`, same CONFIG and LAB_HOME); only
the controller is asked, over the lab's own SSH; the load goes from the controller to itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bootstrap.context import DEMO_OPENRC  # noqa: E402
from bootstrap.hostprograms import call  # noqa: E402
from lab.config import load_config  # noqa: E402
from labcore.inventory import load_inventory  # noqa: E402
from labcore.paths import LabPaths  # noqa: E402

console = Console(highlight=False)


def run_load(remote, python: str, seconds: int, clients: int) -> dict:
    result = remote.run(call(python, "cloud_load.py", DEMO_OPENRC, str(seconds), str(clients)), sudo=True,
                        timeout=seconds + 180)
    if result.exited not in (0, 1) or not result.stdout.strip():
        raise SystemExit(f"cloud_load.py on the controller: exit {result.exited}: "
                         f"{(result.stderr.strip() or result.stdout.strip())[-300:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def row(found: dict) -> list[str]:
    ops = found["ops"]
    latency = [f"{ops[op]['p50_ms']} / {ops[op]['p99_ms']}" for op in ("token", "put", "get")]
    return [str(found["clients"]), str(found["requests"]), f"{found['requests'] / found['seconds']:.1f}",
            str(found["errors"]), *latency]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/lab.yaml")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", default="1,4,8")
    args = parser.parse_args(argv)
    spec = load_config(args.config)
    paths = LabPaths.for_lab(spec.name)
    inventory = load_inventory(paths.inventory)
    from bootstrap.profiles import profile_for
    from lab.ssh import FabricRemote

    python = profile_for(inventory.os, inventory.release).python
    remote = FabricRemote(inventory.controller, inventory)
    table = Table(title=f"cloud load on {spec.name} ({inventory.os}), {args.seconds} s each, from the controller")
    for column in ("clients", "requests", "req/s", "errors", "token p50/p99 ms", "put p50/p99 ms", "get p50/p99 ms"):
        table.add_column(column, justify="right")
    errors = 0
    try:
        for clients in (int(n) for n in args.clients.split(",")):
            found = run_load(remote, python, args.seconds, clients)
            errors += found["errors"]
            table.add_row(*row(found))
            if found["errors"]:
                console.print(f"{clients} clients: errors {found['error_kinds']}")
    finally:
        remote.close()
    console.print(table)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
