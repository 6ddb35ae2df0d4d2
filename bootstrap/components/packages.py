"""Every package a host needs, in two apt-gets per host, then chrony (guide: environment, NTP).

Two installs per host instead of one per guide chapter: apt resolves and unpacks few
times, which is what keeps `lab install` close to a plain apt-get of the same packages.
The first has the environment's services (on the controller: database, message queue,
memcached, etcd), so that they are configured while the second, the OpenStack client and
the services' own packages, is still unpacking (phases packages and service-packages).
Debconf questions are answered first (Debian's OpenStack packages would otherwise try to
configure their databases themselves).
"""

from __future__ import annotations

import shlex

from bootstrap.context import PlanContext, apt_install, enable_units, packages_installed
from bootstrap.plan import FileSpec, Step

CHRONY_DROPIN = "/etc/systemd/system/chrony.service.d/lab.conf"
POLICY_RC_D = "/usr/sbin/policy-rc.d"
_POLICY_MARK = "openstack-ec2-lab: services start once configured"
# A run killed mid-install may leave the file: the step is not done until it is gone.
NO_LEFTOVER_POLICY = f"! grep -qs {shlex.quote(_POLICY_MARK)} {POLICY_RC_D}"


def install_step(ctx: PlanContext, role: str, phase: str) -> Step:
    """One apt-get of the role's packages for phase ("packages": the environment's,
    "service-packages": the client and the services')."""
    if phase == "packages":
        name, packages = f"install-{role}-packages", ctx.profile.environment_packages(role)
    else:
        name, packages = f"install-{role}-service-packages", ctx.profile.service_packages(role)
    commands = []
    if ctx.profile.debconf_selections and phase == "service-packages":
        selections = "\n".join(ctx.profile.debconf_selections)
        commands.append(f"printf '%s\\n' {shlex.quote(selections)} | debconf-set-selections")
    commands.append(starts_deferred(apt_install(packages)))
    return Step(name=name, phase=phase, hosts=ctx.hosts(role),
                commands=tuple(commands), check=f"{packages_installed(packages)} && {NO_LEFTOVER_POLICY}")


def starts_deferred(command: str) -> str:
    """command, with Debian's policy-rc.d answering "not now" to each service start a package asks for.

    The guide installs, then configures, then restarts every service, so the start at
    install time is thrown away: keystone's uwsgi workers, RabbitMQ, MariaDB, a storage
    node's twelve Swift daemons, all loading while dpkg still unpacks. Each service's own
    step starts it, configured. The file goes when the command ends, however it ends; a
    policy-rc.d the host already had is left as it is.
    """
    p = POLICY_RC_D
    own = f"printf '#!/bin/sh\\n# {_POLICY_MARK}\\nexit 101\\n' > {p} && chmod 755 {p}"
    return (f"if grep -qs {shlex.quote(_POLICY_MARK)} {p}; then rm -f {p}; fi; "
            f"if [ -e {p} ]; then {command}; else trap 'rm -f {p}' EXIT; trap 'rm -f {p}; exit 1' HUP INT TERM; "
            f"{own} && {command}; fi")


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
                           commands=reload + (enable_units(service), f"systemctl restart {service}"),
                           check=f"systemctl is-active --quiet {service}"))
    return result


def steps(ctx: PlanContext) -> list[Step]:
    roles = [role for role in ("controller", "object") if ctx.hosts(role)]
    installs = [install_step(ctx, role, phase) for phase in ("packages", "service-packages") for role in roles]
    return installs + chrony_steps(ctx)
