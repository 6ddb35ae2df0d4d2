"""Environment chapter, all nodes: the host as the lab found it, its names, the package archive.

`host_steps` is the host's base state, the one definition `lab up` and `lab install` both
run: the lab's host programs, first boot finished (the OS the config says, cloud-init
done, no dpkg or apt lock held, apt's periodic jobs masked for the life of the lab), the hostname, the /etc/hosts block and the lab's
expiry timer. `lab up` needs
the names before anything else (and before its storage preparation's apt-get);
`lab install` repairs them if a reboot or a hand edit undid them. Then, in `lab install`
only, the package archive with `apt-get update` first, the upgrade, and the reboot the
upgrade may ask for. chrony is configured in the packages phase, right after it is
installed.
"""

from __future__ import annotations

import shlex

from bootstrap import guide, hostprograms
from bootstrap.actions import Block, Command, FileSpec, Reboot, Wait
from bootstrap.components import expiry
from bootstrap.context import STAMP_DIR, PlanContext, commands_stamp
from bootstrap.plan import Step
from lab import hostsfile
from labcore.inventory import NodeRecord

ARCHIVE_STAMP = f"{STAMP_DIR}/package-archive.done"
APT_LISTS = "/var/lib/apt/lists"
HOSTS_FILE = "/etc/hosts"
HOSTNAME_FILE = "/etc/hostname"
# Read after the image's own cloud.cfg.d files (cloud-init reads them in name order).
CLOUD_INIT_DROP_IN = "/etc/cloud/cloud.cfg.d/99-openstack-ec2-lab.cfg"
CLOUD_INIT_KEEPS_NAMES = ("# openstack-ec2-lab: the lab sets this host's name and the lab's block in /etc/hosts\n"
                          "# (the guide's host networking); cloud-init must not put them back at a boot.\n"
                          "preserve_hostname: true\nmanage_etc_hosts: false\n")
FIRST_BOOT_SECONDS = 900.0  # cloud-init and apt-daily on a fresh EC2 host: minutes, not more
# apt's periodic jobs: a test cloud must not upgrade itself under the install (nor later).
APT_TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer")
UNATTENDED = "unattended-upgrades.service"

# Package lists exist at all: a host whose lists were cleaned could not install anything.
_LISTS_PRESENT = f"test -n \"$(find {APT_LISTS} -maxdepth 1 -name '*Packages*' -print -quit)\""


def programs_step(ctx: PlanContext) -> Step:
    return Step("host-programs", "base", ctx.hosts(), hostprograms.files())


def _masked(units: tuple[str, ...]) -> str:
    """True when every unit is masked and none runs (a nonexistent unit can be masked too)."""
    names = " ".join(units)
    return (f"! systemctl is-active --quiet {names} && "
            f"[ \"$(systemctl is-enabled {names} 2>/dev/null | sort -u)\" = masked ]")


def _mask_and_stop(units: tuple[str, ...]) -> tuple[str, ...]:
    """Masked first (nothing starts them again), then stopped where they run."""
    return (f"systemctl mask {' '.join(units)}",
            f"for u in {' '.join(units)}; do if systemctl is-active --quiet \"$u\"; then systemctl stop \"$u\"; fi; done")


def first_boot_step(ctx: PlanContext) -> Step:
    """Before the first apt command: the host runs the profile's OS, whatever it does on its
    first boot (cloud-init, apt-daily, unattended-upgrades) is done with apt, and apt's
    periodic jobs stay off for the life of the lab.

    In this order, so that no dpkg run is cut off midway: the timers masked and stopped
    (stopping a timer leaves a job it started running); the wait, until no lock is held and
    apt-daily's jobs are done; then unattended-upgrades stopped (its stop waits for an upgrade
    in progress) and masked."""
    timers = Command(_mask_and_stop(APT_TIMERS), _masked(APT_TIMERS), after_change=False,
                     what=f"mask and stop apt's timers ({', '.join(APT_TIMERS)}) for the life of the lab")
    probe = hostprograms.argv("python3", "first_boot.py", ctx.profile.os_id, ctx.profile.version_id)
    wait = Wait(f"the host runs {ctx.profile.name}, cloud-init is done, no dpkg or apt lock is held and "
                "apt's daily jobs are done", probe, judge="first-boot", seconds=FIRST_BOOT_SECONDS)
    unattended = Command(_mask_and_stop((UNATTENDED,)), _masked((UNATTENDED,)), after_change=False,
                         what=f"mask and stop {UNATTENDED} for the life of the lab")
    return Step("first-boot", "base", ctx.hosts(), (timers, wait, unattended), guide=guide.PACKAGES)


def hostname_step(node: NodeRecord) -> Step:
    """/etc/hostname as a file, the running name by hostnamectl or, where it cannot work
    (a container without systemd-hostnamed), by `hostname`."""
    q = shlex.quote(node.name)
    return Step("hostname", "base", (node.name,),
                (FileSpec(HOSTNAME_FILE, f"{node.name}\n"),
                 Command((f"hostnamectl set-hostname {q} 2>/dev/null || hostname {q}",), f'[ "$(hostname)" = {q} ]',
                         what=f"set the running hostname to {node.name}")),
                guide=guide.HOSTS)


def hosts_file_step(ctx: PlanContext) -> Step:
    """The lab's block in /etc/hosts, and cloud-init told to leave the names alone: Debian's
    cloud images set manage_etc_hosts: true, so cloud-init writes /etc/hosts again from its
    template at every boot, and after a reboot `controller` would no longer resolve."""
    keep = FileSpec(CLOUD_INIT_DROP_IN, CLOUD_INIT_KEEPS_NAMES)
    block = Block(HOSTS_FILE, hostsfile.hosts_lines(ctx.inventory), hostsfile.MARKER, hostsfile.COMMENT_OUT)
    return Step("hosts-file", "base", ctx.hosts(), (keep, block), guide=guide.HOSTS)


def archive_step(ctx: PlanContext) -> Step:
    """The archive, `apt-get update` and the upgrade, once per host.

    Done means: the archive is configured, package lists exist, and the stamp names these
    very commands (a profile whose archive changes runs again). Not "lists are fresh": a
    re-run next week must change nothing; the packages phase only installs what a host lacks.
    """
    archive = ctx.profile.archive()
    # The stamp names the commands as the profile writes them, not their lock waits.
    record, recorded = commands_stamp(ARCHIVE_STAMP, ctx.profile.archive_commands)
    done = f"{_LISTS_PRESENT} && {recorded}"
    check = done if ctx.profile.archive_check is None else f"{ctx.profile.archive_check} && {done}"
    what = ("ask the archive for the release's pocket, add it, apt-get update, upgrade" if len(archive) > 1
            else "apt-get update")
    return Step("package-archive", "base", ctx.hosts(), (Command((*archive, record), check, what=what),),
                guide=guide.PACKAGES)


def reboot_step(ctx: PlanContext) -> Step:
    return Step("reboot-if-required", "base", ctx.hosts(), (Reboot(),), guide=guide.PACKAGES)


def host_steps(ctx: PlanContext) -> list[Step]:
    """The host's base state: what `lab up` sets before its storage preparation, and `lab install` keeps."""
    return [programs_step(ctx), first_boot_step(ctx), *(hostname_step(n) for n in ctx.inventory.nodes),
            hosts_file_step(ctx), expiry.timer_step(ctx)]


def steps(ctx: PlanContext) -> list[Step]:
    return [*host_steps(ctx), archive_step(ctx), reboot_step(ctx)]
