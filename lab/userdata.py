"""The user data every instance is launched with: its expiry, kept from the first boot (pure).

A cloud-config whose one `bootcmd` powers the host off at lab:expires-at. cloud-init runs
bootcmd at every boot, early (its init stage, before sshd starts), as root, in /bin/sh, on
both images the lab boots (Ubuntu 18.04's cloud-init 18.x and later, Debian 12's 22.4). So
the expiry holds from the moment RunInstances returns, whatever happens to `lab up` after
it, and again after any reboot until the lab's own timer takes over (lab/expiry.py says how
the two hand over: HANDOVER_FILE).

At each boot the script works from the absolute time: the seconds left are computed from
the clock then, so a reboot does not restart the count, and a host that boots past its
expiry powers off at once. It schedules a transient timer with systemd-run rather than a
unit file, so nothing is left on disk for the lab's own timer to clean up. Every option it
uses is in systemd 237 (Ubuntu 18.04) and 252 (Debian 12):
- `--no-block`: cloud-init's init stage runs before sysinit.target, and a timer starts only
  after it; waiting for the start job from inside that stage would wait for itself.
- `--timer-property=DefaultDependencies=no`: without it the timer is ordered after
  sysinit.target and systemd-run (252, Debian 12, seen on the twin's real cloud-init) waits
  for it even with --no-block, so cloud-init's init stage, and the boot, never end.
- `--on-active=Ns`: seconds from now, monotonic, so a clock step after boot does not move it.
- `--timer-property=AccuracySec=1s`: a timer may otherwise fire up to a minute late.
A lab that never expires is launched with no user data at all.
"""

from __future__ import annotations

from datetime import datetime, timezone

from lab.expiry import HANDOVER_FILE, LAUNCH_UNIT, tag_value

HEADER = "#cloud-config"


def expiry_script(moment: datetime) -> str:
    """The bootcmd: power off at moment (UTC), unless the lab's own timer took over (POSIX sh)."""
    end = int(moment.astimezone(timezone.utc).timestamp())
    when = tag_value(moment)
    return (f"if [ -e {HANDOVER_FILE} ]; then\n"
            f"  echo 'openstack-ec2-lab: the expiry set over SSH rules this host ({HANDOVER_FILE})'\n"
            f"else\n"
            f"  left=$(( {end} - $(date +%s) ))\n"
            f"  if [ \"$left\" -le 0 ]; then\n"
            f"    echo 'openstack-ec2-lab: the lab expired at {when}: powering off'\n"
            f"    systemctl --no-block poweroff\n"
            f"  else\n"
            f"    echo \"openstack-ec2-lab: powering off at {when}, in $left s\"\n"
            f"    systemd-run --no-block --unit={LAUNCH_UNIT} --timer-property=DefaultDependencies=no \\\n"
            f"      --description='openstack-ec2-lab: the lab expires at {when} (lab:expires-at)' \\\n"
            f"      --on-active=\"${{left}}s\" --timer-property=AccuracySec=1s /bin/systemctl poweroff\n"
            f"  fi\n"
            f"fi\n")


def user_data(moment: datetime | None) -> str | None:
    """The cloud-config of an instance of a lab that expires at moment; None when it never expires."""
    if moment is None:
        return None
    script = "".join(f"    {line}\n" if line else "\n" for line in expiry_script(moment).splitlines())
    return (f"{HEADER}\n"
            f"# openstack-ec2-lab: this host powers itself off at the lab's expiry, {tag_value(moment)}\n"
            f"# (lab:expires-at), from its first boot and at every boot, until `lab up` or `lab extend`\n"
            f"# sets the lab's own timer over SSH; it was launched to terminate when it powers off.\n"
            f"bootcmd:\n"
            f"  - |\n{script}")
