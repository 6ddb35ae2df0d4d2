"""`lab run`, `lab copy`, `lab logs`: operate on many nodes at once, over the lab's own SSH connections.

None of them takes the lab's lock: they create, change and delete none of the lab's
resources (instances, volumes, groups, local state files), so they may run while `lab
install` or another of them runs. What `lab run` does on the hosts is the user's to judge.
Each loads the inventory and the secrets (every line shown from a host is masked), and
checks the lab's private key before the first SSH.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from rich.table import Table
from rich.text import Text

from lab.commands.common import console, context, say, warn
from labcore.errors import LabError, RemoteError
from labcore.inventory import load_inventory
from labcore.secrets import load_secrets

DEFAULT_LINES = 5


def _inputs(args):
    ctx = context(args)
    inventory = load_inventory(ctx.paths.inventory, progress=warn)
    secrets = load_secrets(ctx.paths.secrets, warn)
    return ctx, inventory, secrets


def _ssh(ctx, inventory):
    from lab.keypair import require_private_key
    from lab.ssh import fabric_factory

    require_private_key(ctx.paths, warn)
    return fabric_factory(inventory)


def _number(text: str | None, option: str, default: float, low: float, high: float) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # nan fails too
        raise LabError(f"{option} {text!r}: expected a number from {low:g} to {high:g}")
    return value


# ------------------------------------------------------------------ lab run
def split_words(words: list[str]) -> tuple[list[str], str]:
    """`[NODE...] -- COMMAND` into node names and the command's text (words joined by spaces, as ssh does)."""
    if "--" not in words:
        raise LabError("lab run [--role ROLE] [NODE...] -- COMMAND: put the command after --")
    at = words.index("--")
    names, command = words[:at], " ".join(words[at + 1:]).strip()
    options = [w for w in names if w.startswith("-")]
    if options:
        raise LabError(f"lab run: {options[0]} after a node name: options go before the node names")
    if not command:
        raise LabError("lab run: no command after --")
    return names, command


def run_command(args) -> int:
    from lab.fleet import DEFAULT_TIMEOUT, MAX_TIMEOUT, run_on_nodes, select_nodes

    names, command = split_words(list(args.words))
    timeout = _number(args.timeout, "--timeout", DEFAULT_TIMEOUT, 1, MAX_TIMEOUT)
    lines = int(_number(args.lines, "--lines", DEFAULT_LINES, 1, 1000))
    ctx, inventory, secrets = _inputs(args)
    nodes = select_nodes(inventory, args.role, names)
    results = run_on_nodes(nodes, _ssh(ctx, inventory), command, timeout=timeout)
    render_results(results, lines, secrets.mask)
    failed = [r.host for r in results if not r.ok]
    say(f"{len(results) - len(failed)} of {len(results)} hosts succeeded"
        + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def render_results(results, lines: int, mask) -> None:
    """host, exit code, seconds, the last lines (stdout; stderr too when it failed); every cell masked."""
    from lab.fleet import last_lines

    table = Table(title="lab run")
    for column in ("host", "exit", "seconds", "output"):
        table.add_column(column)
    for r in results:
        if r.error is not None:
            exit_cell, output = Text("-", style="bold red"), f"unreachable: {r.error}"
        else:
            exit_cell = Text(str(r.exited), style="green" if r.ok else "bold red")
            output = last_lines(r.stdout, lines)
            if not r.ok:
                output = "\n".join(part for part in (output, last_lines(r.stderr, lines)) if part)
            if r.timed_out:
                output = "\n".join(part for part in (output, "stopped: its time (--timeout) was up") if part)
        table.add_row(Text(r.host), exit_cell, Text(f"{r.seconds:.1f}"), Text(mask(output)))
    console.print(table)


# ------------------------------------------------------------------ lab copy
def copy(args) -> int:
    from lab import filecopy, nodecopy

    mode = filecopy.parse_mode(args.mode)
    ctx, inventory, secrets = _inputs(args)
    request = nodecopy.parse_copy(args.source, args.destination, inventory)
    if isinstance(request, nodecopy.RelayRequest):
        return _relay(ctx, inventory, secrets, request, mode, args)
    if not request.inbound:
        filecopy.download_target(request.local_path, request.remote_path, args.force)  # bad input before SSH
    remote = _ssh(ctx, inventory)(request.node)
    try:
        if request.inbound:
            done = filecopy.push(request, remote, mode=mode, mask=secrets.mask)
        else:
            done = filecopy.pull(request, remote, mode=mode, force=args.force, mask=secrets.mask)
    finally:
        remote.close()
    _line(f"copied {args.source} -> {done.where}: {done.size} bytes, sha256 {done.sha256}")
    return 0


def _relay(ctx, inventory, secrets, request, mode, args) -> int:
    """NODE:SRC NODE:DST: read on one node, written on the other, through this machine (lab/nodecopy.py)."""
    from lab import nodecopy

    nodecopy.refuse_force(args.force)
    factory = _ssh(ctx, inventory)
    source, destination = factory(request.source), factory(request.node)
    try:
        done = nodecopy.relay(request, source, destination, mode=mode, mask=secrets.mask)
    finally:
        source.close()
        if destination is not source:
            destination.close()
    _line(f"copied {args.source} -> {done.where} ({nodecopy.ROUTE}): {done.size} bytes, sha256 {done.sha256}")
    return 0


# ------------------------------------------------------------------ lab logs
def logs(args) -> int:
    from bootstrap.profiles import profile_for
    from lab import logbundle

    lines = int(_number(args.lines, "--lines", logbundle.JOURNAL_LINES, 1, 1_000_000))
    ctx, inventory, secrets = _inputs(args)
    profile = profile_for(inventory.os, inventory.release)
    factory = _ssh(ctx, inventory)
    say(f"collecting the service logs of {len(inventory.nodes)} hosts")
    hosts = logbundle.collect(list(inventory.nodes), factory, profile, lines)
    members = logbundle.members_of(hosts, logbundle.local_logs(ctx.paths.logs))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = _free_name(ctx.paths.root, f"logs-{stamp}", ".tar.gz")
    size = logbundle.write_archive(path, members, secrets.mask)
    for host in hosts:
        say(f"  {host.host}: {len(host.members)} logs" + (" (could not be read: see unreachable.txt)"
                                                         if host.error else ""))
    _line(f"{path} ({size} bytes, {len(members)} files, mode 0600)")
    unread = [h for h in hosts if h.error]
    if unread:
        more = f" (and {len(unread) - 1} more hosts)" if len(unread) > 1 else ""
        raise RemoteError(f"{secrets.mask(unread[0].error)[:300]}{more}; the archive holds what was read; check the "
                          f"hosts run (`lab status`), then run `lab logs` again")
    return 0


def _line(text: str) -> None:
    """A line that holds a path or a hash: never wrapped, so it can be copied whole."""
    console.print(text, markup=False, soft_wrap=True)


def _free_name(folder, stem: str, suffix: str):
    """folder/stem+suffix, or stem-2, -3, ... when a run in the same second took it."""
    path, n = folder / f"{stem}{suffix}", 1
    while os.path.exists(path):
        n += 1
        path = folder / f"{stem}-{n}{suffix}"
    return path
