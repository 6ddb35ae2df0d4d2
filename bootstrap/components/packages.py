"""Every package a host needs, in two apt-gets per host, then chrony (guide: environment, NTP).

(The controller's openstack-dashboard is a third, in the dashboard's own step: its postinst
compresses Horizon's files, which is done once when the lab's settings are there first.)

Two installs per host instead of one per guide chapter: apt resolves and unpacks few
times, which is what keeps `lab install` close to a plain apt-get of the same packages.
The first has the environment's services (on the controller: database, message queue,
memcached, etcd), so that they are configured while the second, the OpenStack client and
the services' own packages, is still unpacking (phases packages and service-packages).
Debconf questions are answered first (Debian's OpenStack packages would otherwise try to
configure their databases themselves). While apt runs, no package starts its service
(bootstrap/render.py: starts_deferred); each service's own step starts it, configured.
"""

from __future__ import annotations

from bootstrap import guide
from bootstrap.actions import FileSpec, Packages, Service
from bootstrap.context import PlanContext
from bootstrap.plan import Step
from bootstrap.render import NO_LEFTOVER_POLICY, POLICY_RC_D, starts_deferred  # noqa: F401 - re-exported

CHRONY_DROPIN = "/etc/systemd/system/chrony.service.d/lab.conf"


def install_step(ctx: PlanContext, role: str, phase: str) -> Step:
    """One apt-get of the role's packages for phase ("packages": the environment's,
    "service-packages": the client and the services')."""
    if phase == "packages":
        name, names = f"install-{role}-packages", ctx.profile.environment_packages(role)
        debconf: tuple[str, ...] = ()
    else:
        name, names = f"install-{role}-service-packages", ctx.profile.service_packages(role)
        debconf = ctx.profile.debconf_selections
    return Step(name, phase, ctx.hosts(role), (Packages(names, debconf, lock=ctx.profile.apt_lock),),
                guide=guide.PACKAGES)


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
    common: tuple[FileSpec, ...] = ()
    if not ctx.time.set_clock:
        # Hosts sharing the machine's clock (the twin's containers) must never set it: -x.
        common = (FileSpec("/etc/default/chrony", 'DAEMON_OPTS="-F 1 -x"\n'),
                  FileSpec(CHRONY_DROPIN, "[Unit]\nConditionCapability=\n"))
    service = Service(("chrony",), daemon_reload=not ctx.time.set_clock)
    result = []
    for name, hosts, controller, url in (
            ("chrony-controller", (ctx.controller.name,), True, guide.NTP_CONTROLLER),
            ("chrony-follow-controller", tuple(h for h in ctx.hosts() if h != ctx.controller.name), False,
             guide.NTP_OTHER)):
        if hosts:
            files = (FileSpec(ctx.profile.chrony_conf, chrony_conf(ctx, controller)),) + common
            result.append(Step(name, "packages", hosts, (*files, service), guide=url))
    return result


def steps(ctx: PlanContext) -> list[Step]:
    roles = [role for role in ("controller", "object") if ctx.hosts(role)]
    installs = [install_step(ctx, role, phase) for phase in ("packages", "service-packages") for role in roles]
    return installs + chrony_steps(ctx)
