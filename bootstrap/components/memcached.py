"""Memcached on the controller (guide: environment, memcached), listening on the management IP."""

from __future__ import annotations

from bootstrap import guide
from bootstrap.actions import FileSpec, Service
from bootstrap.context import PlanContext
from bootstrap.plan import Step

MEMCACHED_CONF = "/etc/memcached.conf"


def memcached_conf(ip: str) -> str:
    # The package's defaults, with the guide's one change: -l <management IP> instead of 127.0.0.1.
    return ("# openstack-ec2-lab: guide, environment, memcached\n"
            "-d\nlogfile /var/log/memcached.log\n-m 64\n-p 11211\n-u memcache\n"
            f"-l {ip}\n-P /var/run/memcached/memcached.pid\n")


def steps(ctx: PlanContext) -> list[Step]:
    return [Step("memcached-listen", "controller-services", (ctx.controller.name,),
                 (FileSpec(MEMCACHED_CONF, memcached_conf(ctx.controller.private_ip)), Service(("memcached",))),
                 guide=guide.MEMCACHED)]
