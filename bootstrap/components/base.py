"""Environment chapter, all nodes: the release's package archive, then every host up to date.

Hostnames and /etc/hosts are done by `lab up` (they are needed before anything else);
chrony is configured in the packages phase, right after it is installed.
"""

from __future__ import annotations

from bootstrap.context import PlanContext
from bootstrap.plan import Step

# A host whose package lists are younger than this does not need `apt-get update` again.
_FRESH_LISTS = "test -n \"$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -360 -print -quit)\""


def steps(ctx: PlanContext) -> list[Step]:
    archive = ctx.profile.archive_commands
    check = _FRESH_LISTS if ctx.profile.archive_check is None else f"{ctx.profile.archive_check} && {_FRESH_LISTS}"
    return [Step(name="package-archive", phase="base", hosts=ctx.hosts(), commands=archive, check=check)]
