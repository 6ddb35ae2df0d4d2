"""`lab verify --tempest`'s part on this machine: Tempest run on the controller, shown, kept.

The run itself (bootstrap/conformance/runner.py) talks to the controller through one SSH
connection; its subunit stream and log land in `.lab/<name>/tempest/` (0600), the table
goes to the terminal and the report page gets its conformance section.
"""

from __future__ import annotations

from pathlib import Path

from lab.commands.common import Context, console, say, warn
from labcore.inventory import Inventory
from labcore.secrets import Secrets


def tempest_dir(ctx: Context) -> Path:
    return ctx.paths.root / "tempest"


def run_conformance(ctx: Context, inventory: Inventory, secrets: Secrets, concurrency: int) -> tuple[bool, Path | None]:
    """Run Tempest, show and record its results; (both sets without a failure, the report page)."""
    from bootstrap.conformance.runner import run_tempest
    from bootstrap.conformance.show import render
    from bootstrap.report_html import write_conformance_report
    from lab.ssh import FabricRemote

    remote = FabricRemote(inventory.controller, inventory)
    try:
        found = run_tempest(remote, inventory.os, inventory.release, secrets, tempest_dir(ctx), progress=say,
                            concurrency=concurrency)
    finally:
        remote.close()
    render(found, console)
    page = write_conformance_report(ctx.paths, inventory, found, secrets, warn)
    if not found.ok:
        say("Tempest found failures: each names its test and why; the subunit stream and Tempest's log are in "
            f"{tempest_dir(ctx)}/")
    return found.ok, page
