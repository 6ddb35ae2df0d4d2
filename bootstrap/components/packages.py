"""Every package a host needs, in one apt-get per host, then chrony (guide: environment, NTP).

One install per host instead of one per guide chapter: apt resolves and unpacks once,
which is what keeps `lab install` close to a plain apt-get of the same packages.
Debconf questions are answered first (Debian's OpenStack packages would otherwise try to
configure their databases themselves).
"""

from __future__ import annotations

import shlex

from bootstrap.context import PlanContext, apt_install, packages_installed
from bootstrap.plan import FileSpec, Step

CHRONY_DROPIN = "/etc/systemd/system/chrony.service.d/lab.conf"


def install_step(ctx: PlanContext, role: str) -> Step:
    packages = ctx.profile.packages_for(role)
    commands = []
    if ctx.profile.debconf_selections:
        selections = "\n".join(ctx.profile.debconf_selections)
        commands.append(f"printf '%s\\n' {shlex.quote(selections)} | debconf-set-selections")
    commands.append(apt_install(packages))
    return Step(name=f"install-{role}-packages", phase="packages", hosts=ctx.hosts(role),
                commands=tuple(commands), check=packages_installed(packages))


def chrony_conf(ctx: PlanContext, controller: bool) -> str:
    lines = ["# openstack-ec2-lab: guide, environment, Network Time Protocol",
             "driftfile /var/lib/chrony/chrony.drift", "makestep 1 3", "rtcsync" if ctx.time.set_clock else ""]
    if controller:
        if ctx.time.upstream:
            lines.append(f"server {ctx.time.upstream} iburst")
        else:
            lines.append("# no outside server is reachable: serve the local clock")
            lines.append("local stratum 8")
        lines.append(f"allow {ctx.inventory.subnet_cidr}")
    else:
        lines.append("server controller iburst")
    return "\n".join(line for line in lines if line) + "\n"


def chrony_steps(ctx: PlanContext) -> list[Step]:
    service = "chrony"
    common: tuple[FileSpec, ...] = ()
    reload = ()
    if not ctx.time.set_clock:
        # Hosts sharing the machine's clock (the twin's containers) must never set it: -x.
        common = (FileSpec("/etc/default/chrony", 'DAEMON_OPTS="-F 1 -x"\n'),
                  FileSpec(CHRONY_DROPIN, "[Unit]\nConditionCapability=\n"))
        reload = ("systemctl daemon-reload",)
    result = []
    for name, hosts, controller in (("chrony-controller", (ctx.controller.name,), True),
                                    ("chrony-follow-controller", tuple(h for h in ctx.hosts() if h != ctx.controller.name), False)):
        if not hosts:
            continue
        files = (FileSpec(ctx.profile.chrony_conf, chrony_conf(ctx, controller)),) + common
        result.append(Step(name=name, phase="packages", hosts=hosts, files=files,
                           commands=reload + (f"systemctl enable {service}", f"systemctl restart {service}"),
                           check=f"systemctl is-active --quiet {service}"))
    return result


def steps(ctx: PlanContext) -> list[Step]:
    installs = [install_step(ctx, role) for role in ("controller", "object") if ctx.hosts(role)]
    return installs + chrony_steps(ctx)
