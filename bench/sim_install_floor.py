"""The physical floor of `lab install` on the twin: one plain apt-get of the same packages.

`lab install` cannot be faster than downloading and unpacking the packages it needs, so
this boots ONE fresh twin container (the same cached Debian 12 image and the same shared
apt download cache as a lab's hosts get) and times, inside it:

    apt-get update && apt-get install -y --no-install-recommends <every package of every role>

Compare with the wall time of `lab install` on a fresh lab (the e2e test prints it):
install / floor is the overhead of configuring OpenStack the guide's way (target <= 1.3).

    sudo .venv/bin/python bench/sim_install_floor.py [--role controller --role object]

Needs root and no lab running on the twin (it borrows the twin's bridge and removes it).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bootstrap.components.packages import starts_deferred  # noqa: E402
from bootstrap.context import apt_install  # noqa: E402
from bootstrap.profiles import DEBIAN_12  # noqa: E402
from lab.sim import container, netns  # noqa: E402
from lab.sim.bodies import HostBodies  # noqa: E402
from lab.sim.client import check_host  # noqa: E402
from lab.sim.hostcmd import sh  # noqa: E402
from lab.sim.model import InstanceBody  # noqa: E402

SUBNET = "172.31.0.0/20"
INSTANCE = "i-0f100rbench0000"


def packages(roles: list[str]) -> list[str]:
    return list(dict.fromkeys(p for role in roles for p in DEBIAN_12.packages_for(role)))


def run_in(init_pid: int, script: str) -> float:
    started = time.monotonic()
    sh("nsenter", "-t", str(init_pid), "-m", "-u", "-i", "-n", "-p", "--", "sh", "-c", script, timeout=3600)
    return time.monotonic() - started


def measure_floor(roles: list[str], defer_starts: bool = False) -> tuple[int, float, float]:
    """(number of packages, apt-get update seconds, apt-get install seconds) in one fresh container.

    Needs root and no lab running on the twin (it borrows the twin's bridge and removes it).
    """
    wanted = packages(roles)
    with tempfile.TemporaryDirectory(prefix="lab-floor-") as state:
        layer = HostBodies(Path(state))
        body = InstanceBody(INSTANCE, "floor", "floor", "172.31.15.250", SUBNET, "debian", "")
        try:
            layer.ensure_network(SUBNET)
            layer.start(body)
            init = container.wait_for_init(int((Path(state) / "bodies" / INSTANCE / "nspawn.pid").read_text()))
            selections = "\n".join(DEBIAN_12.debconf_selections)
            run_in(init, f"printf '%s\\n' {shlex.quote(selections)} | debconf-set-selections")
            update = run_in(init, "apt-get update -q >/dev/null")
            command = apt_install(wanted) + " >/dev/null"
            install = run_in(init, starts_deferred(command) if defer_starts else command)
        finally:
            for line in layer.teardown_all():
                print(f"  cleaned: {line}", file=sys.stderr)
    return len(wanted), update, install


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", action="append", choices=("controller", "object"),
                        help="roles whose packages to install (default: both, the whole lab's set)")
    parser.add_argument("--defer-starts", action="store_true",
                        help="as `lab install` does: no service starts while apt runs (policy-rc.d)")
    args = parser.parse_args()
    check_host()
    if netns.link_exists(netns.BRIDGE):
        print("a lab is running on the twin: run `lab down` first (this borrows its bridge)", file=sys.stderr)
        return 2
    count, update, install = measure_floor(args.role or ["controller", "object"], args.defer_starts)
    how = "services not started (policy-rc.d)" if args.defer_starts else "plain"
    print(f"{count} packages in one fresh container, {how}: apt-get update {update:.1f} s, "
          f"apt-get install {install:.1f} s, floor = {update + install:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
