"""When a lab stops itself: the lab:expires-at tag (UTC, ISO 8601) and the hosts' own timers.

The time is decided once, by `lab up` (now + expires_after) or `lab extend`, and written
on every resource of the lab as a tag, so that `lab list` and `lab down --expired` need
no local state. EC2 terminates an instance launched with InstanceInitiatedShutdownBehavior=
terminate when it powers off, so a host that powers itself off at that moment stops costing
even when the laptop that made it is closed. Two timers do it, one after the other:

- From the first boot, the launch's own: the user data (lab/userdata.py) schedules a
  transient `lab-expiry-launch.timer` at every boot, from the tag's time. It holds whatever
  happens to `lab up` after RunInstances (no SSH, a wrong user, Ctrl-C, a quota error).
- Once `lab up` or `lab extend` reaches the host over SSH, the lab's own (`lab-expiry.timer`,
  bootstrap/components/expiry.py), which `lab extend` moves. That step also writes
  HANDOVER_FILE and stops the launch timer: from then on the launch timer stands down, at
  this boot and every later one (the user data checks for the file before it schedules),
  so an extended lab is not powered off at its first time. User data cannot be changed
  on a running instance, hence a file on the host rather than new user data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from labcore import tags as tag

TAG_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TIMER_UNIT = "lab-expiry.timer"
SERVICE_UNIT = "lab-expiry.service"
LAUNCH_UNIT = "lab-expiry-launch"  # the user data's transient timer and service (.timer, .service)
# Written over SSH with the lab's own timer: while it exists, the launch-time timer stands down.
HANDOVER_FILE = "/etc/openstack-ec2-lab/expiry"
HANDOVER_NOTE = ("openstack-ec2-lab: this host's expiry is set over SSH by `lab up` and `lab extend` "
                 f"({TIMER_UNIT}, absent when the lab never expires); while this file exists the "
                 f"launch-time power-off ({LAUNCH_UNIT}.timer, from the instance's user data) stands down\n")


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def expires_at(expiry: timedelta | None, start: datetime | None = None) -> datetime | None:
    """start (default now) + expiry, to the second; None when the lab never expires."""
    return None if expiry is None else (start or now()) + expiry


def tag_value(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(TAG_FORMAT)


def parse_tag(value: str | None) -> datetime | None:
    """The moment a tag names; None when absent or not in the lab's format (never treated as expired)."""
    if not value:
        return None
    try:
        return datetime.strptime(value, TAG_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def is_expired(moment: datetime | None, at: datetime | None = None) -> bool:
    return moment is not None and moment <= (at or now())


def describe_left(moment: datetime | None, at: datetime | None = None) -> str:
    """"expires 2026-12-02T18:00:00Z (in 7h 59m)", "expired 2026-12-02T10:00:00Z (12m ago)", "never expires"."""
    if moment is None:
        return "never expires"
    delta = moment - (at or now())
    if delta.total_seconds() <= 0:
        return f"expired {tag_value(moment)} ({duration(-delta)} ago)"
    return f"expires {tag_value(moment)} (in {duration(delta)})"


def duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes)
    return " ".join(parts) or "0m"


def timer_units(moment: datetime) -> dict[str, str]:
    """The host's timer and the service it starts: power off at moment (UTC).

    Persistent: a host that was off at that moment powers off right after it boots."""
    when = moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return {
        TIMER_UNIT: ("[Unit]\nDescription=openstack-ec2-lab: the lab expires (lab:expires-at)\n\n"
                     f"[Timer]\nOnCalendar={when}\nPersistent=true\nAccuracySec=1s\n\n"
                     "[Install]\nWantedBy=timers.target\n"),
        SERVICE_UNIT: ("[Unit]\nDescription=openstack-ec2-lab: power off, the lab has expired\n\n"
                       "[Service]\nType=oneshot\nExecStart=/bin/systemctl poweroff\n"),
    }


def launch_timer_active() -> str:
    """The shell check that is true while the launch-time timer is scheduled on the host."""
    return f"systemctl is-active --quiet {LAUNCH_UNIT}.timer"


@dataclass(frozen=True)
class ExpiryPlan:
    """When the lab expires after this `lab up`, and whether the resources it has must be tagged anew."""

    expires_at: datetime | None  # None: never
    after: str  # the config's expires_after this was decided from
    moved: bool  # the lab exists and its tags say another time

    def tags(self) -> dict[str, str]:
        """The lab:expires-* tags every resource carries (none when the lab never expires)."""
        if self.expires_at is None:
            return {}
        return {tag.EXPIRES_AT: tag_value(self.expires_at), tag.EXPIRES_AFTER: self.after}


def plan_expiry(expiry: timedelta | None, after: str, existing: dict[str, dict[str, str]],
                at: datetime | None = None) -> ExpiryPlan:
    """The lab's expiry for this `up`: kept while the config's expires_after is the one its tags
    were made from (an `extend` since is kept too); from now when it changed or the lab is new.

    existing: resource id -> its lab:expires-* tags (lab/discovery.py's expiry_tags)."""
    if existing:
        afters = {tags.get(tag.EXPIRES_AFTER) for tags in existing.values()}
        moments = [m for tags in existing.values() if (m := parse_tag(tags.get(tag.EXPIRES_AT))) is not None]
        current = max(moments) if moments else None
        if afters == {after} and (current is not None) == (expiry is not None):
            return ExpiryPlan(current, after, moved=False)
        if afters == {None} and not moments and expiry is None:
            return ExpiryPlan(None, after, moved=False)  # never expired, never will
    return ExpiryPlan(expires_at(expiry, at), after, moved=bool(existing))
