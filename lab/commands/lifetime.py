"""What a lab costs and how long it lives, as `lab up`, `lab status` and `lab extend` say it."""

from __future__ import annotations

from datetime import datetime

from lab import cost, expiry
from lab.config import LabSpec
from lab.discovery import LabResources
from lab.target import Target


def cost_line(spec: LabSpec, target: Target) -> str:
    """The lab's price per hour and per day (and what it leaves out); on the twin, what it would cost on AWS."""
    line = cost.estimate(cost.usage_of_spec(spec), spec.region).line()
    note = cost.credits_note(spec)
    line = f"{line}; {note}" if note else line
    return line if target.name == "aws" else f"{line} if it ran on AWS; on the twin it costs nothing"


def warnings(spec: LabSpec) -> list[str]:
    """Lines every `lab up` repeats while the config asks for something risky."""
    lines = []
    if spec.expiry is None:
        lines.append("warning: expires_after is never: this lab runs, and costs, until `lab down`")
    if spec.ssh.allow_wide:
        lines.append(f"warning: ssh.allow_wide is set: SSH is open to {', '.join(spec.ssh.allow_from)}")
    if spec.https_allow_from and spec.https_allow_wide:
        why = ("https.allow_wide is set" if spec.https.allow_from is not None
               else "ssh.allow_wide is set and https.allow_from is not")
        lines.append(f"warning: {why}: HTTPS (443, the dashboard and the APIs) is open to "
                     f"{', '.join(spec.https_allow_from)}")
    if spec.auth != "keystone" and "https" in spec.model_fields_set:
        lines.append("warning: https: is set, but a TempAuth lab has no front door: port 443 stays closed")
    return lines


def expiry_line(moment: datetime | None, moved: bool) -> str:
    if moment is None:
        return "the lab never expires: `lab down` when you are done (or `lab extend 8h` to give it an end)"
    verb = "now expires" if moved else "expires"
    return (f"the lab {verb} {expiry.tag_value(moment)} ({expiry.describe_left(moment).split('(')[-1].rstrip(')')}):"
            f" its hosts power themselves off then and EC2 terminates them; `lab extend DURATION` moves it")


def usage_of(found: LabResources, volume_type: str) -> cost.Usage:
    from collections import Counter

    kinds = Counter(i.instance_type for i in found.instances)
    gib = Counter({volume_type: sum(v.size_gb for v in found.volumes)}) if found.volumes else Counter()
    return cost.Usage(kinds, gib, public_ips=len(found.instances))


def lifetime_of(spec: LabSpec, found: LabResources) -> dict:
    """How long the lab has run, what it has cost so far, when it expires: for `lab status`."""
    now = expiry.now()
    launched = [i.launch_time for i in found.instances if i.launch_time is not None]
    start = min(launched) if launched else None
    hours = (now - start).total_seconds() / 3600 if start else 0.0
    estimate = cost.estimate(usage_of(found, spec.volume_type), spec.region)
    moments = [m for tags in found.expiry_tags.values()
               if (m := expiry.parse_tag(tags.get("lab:expires-at"))) is not None]
    moment = max(moments) if moments else None
    return {"running_for": expiry.duration(now - start) if start else None,
            "price_per_hour": estimate.per_hour, "cost_so_far": estimate.so_far(hours) if start else None,
            "expires_at": expiry.tag_value(moment) if moment else None,
            "expires": expiry.describe_left(moment, now)}
