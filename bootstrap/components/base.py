"""Environment chapter, all nodes: host names, /etc/hosts, the release's package archive, an up-to-date host.

`lab up` already sets the hostname and /etc/hosts (nothing else can start before nodes
know each other's names); they are planned here as well so that `lab plan` shows them and
`lab install` repairs them (a reboot, cloud-init or a hand edit may undo them). chrony is
configured in the packages phase, right after it is installed.
"""

from __future__ import annotations

import ast
import inspect
import shlex

from bootstrap.context import STAMP_DIR, PlanContext, commands_stamp
from bootstrap.plan import FileSpec, Step
from lab import hostsfile
from labcore.inventory import Inventory, NodeRecord

ARCHIVE_STAMP = f"{STAMP_DIR}/package-archive.done"
APT_LISTS = "/var/lib/apt/lists"
HOSTS_FILE = "/etc/hosts"
HOSTNAME_FILE = "/etc/hostname"
# Written by the step, run by the host's python3 (3.6 on Ubuntu 18.04, 3.11 on Debian 12).
HOSTS_SCRIPT = "/usr/local/lib/openstack-ec2-lab/hosts.py"

# Package lists exist at all: a host whose lists were cleaned could not install anything.
_LISTS_PRESENT = f"test -n \"$(find {APT_LISTS} -maxdepth 1 -name '*Packages*' -print -quit)\""

_HOSTS_MAIN = '''
import sys
from types import SimpleNamespace


def main(argv):
    """hosts.py check|apply FILE: check exits 0 when FILE already holds the lab's block."""
    mode, path = argv[1], argv[2]
    inventory = SimpleNamespace(nodes=[SimpleNamespace(name=n, private_ip=ip) for n, ip in NODES])
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            existing = f.read()
    except FileNotFoundError:
        existing = ""
    wanted = render_hosts(existing, inventory)
    if mode == "check":
        return 0 if wanted == existing else 1
    if wanted != existing:
        # Rewritten in place, not replaced: /etc/hosts may be a bind mount (containers).
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''


def hosts_script(inventory: Inventory) -> str:
    """A python3 program that merges the lab's block into a hosts file, keeping everything else.

    The merge is lab/hostsfile.py's own code (what `lab up` runs), shipped with its
    annotations and imports removed so that Ubuntu 18.04's python 3.6 runs it: one
    definition of what /etc/hosts must hold, whether `lab up` or `lab install` writes it.
    """
    module = ast.parse(inspect.getsource(hostsfile))
    body = []
    for node in module.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.FunctionDef):
            node.returns = None
            for arg in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
                arg.annotation = None
        body.append(node)
    nodes = [(n.name, n.private_ip) for n in inventory.nodes]
    header = "# Written by openstack-ec2-lab (bootstrap/components/base.py); `lab install` rewrites it.\n"
    return header + ast.unparse(ast.Module(body=body, type_ignores=[])) + f"\nNODES = {nodes!r}" + _HOSTS_MAIN


def hostname_step(node: NodeRecord) -> Step:
    """/etc/hostname as a file, the running name by hostnamectl or, where it cannot work
    (a container without systemd-hostnamed), by `hostname` as lab/prepare.py does."""
    q = shlex.quote(node.name)
    return Step(name="hostname", phase="base", hosts=(node.name,),
                files=(FileSpec(HOSTNAME_FILE, f"{node.name}\n"),),
                commands=(f"hostnamectl set-hostname {q} 2>/dev/null || hostname {q}",),
                check=f'[ "$(hostname)" = {q} ]')


def hosts_file_step(ctx: PlanContext) -> Step:
    run = f"python3 {HOSTS_SCRIPT}"
    return Step(name="hosts-file", phase="base", hosts=ctx.hosts(),
                files=(FileSpec(HOSTS_SCRIPT, hosts_script(ctx.inventory)),),
                commands=(f"{run} apply {HOSTS_FILE}",),
                check=f"{run} check {HOSTS_FILE}")


def archive_step(ctx: PlanContext) -> Step:
    """The archive, `apt-get update` and the upgrade, once per host.

    Done means: the archive is configured, package lists exist, and the stamp names these
    very commands (a profile whose archive changes runs again). Not "lists are fresh": a
    re-run next week must change nothing; `apt-get install` in the packages phase only
    runs for packages a host lacks.
    """
    archive = ctx.profile.archive_commands
    stamp, stamped = commands_stamp(ARCHIVE_STAMP, archive)
    done = f"{_LISTS_PRESENT} && {stamped}"
    check = done if ctx.profile.archive_check is None else f"{ctx.profile.archive_check} && {done}"
    return Step(name="package-archive", phase="base", hosts=ctx.hosts(), commands=(*archive, stamp), check=check)


def steps(ctx: PlanContext) -> list[Step]:
    return [*(hostname_step(n) for n in ctx.inventory.nodes), hosts_file_step(ctx), archive_step(ctx)]
