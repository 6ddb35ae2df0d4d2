"""Memcached on the controller (guide: environment, memcached), listening on the management IP."""

from __future__ import annotations

from bootstrap.context import PlanContext, enable_units
from bootstrap.plan import FileSpec, Step

MEMCACHED_CONF = "/etc/memcached.conf"


def memcached_conf(ip: str) -> str:
    # The package's defaults, with the guide's one change: -l <management IP> instead of 127.0.0.1.
    return ("# openstack-ec2-lab: guide, environment, memcached\n"
            "-d\nlogfile /var/log/memcached.log\n-m 64\n-p 11211\n-u memcache\n"
            f"-l {ip}\n-P /var/run/memcached/memcached.pid\n")


def steps(ctx: PlanContext) -> list[Step]:
    return [Step(name="memcached-listen", phase="controller-services", hosts=(ctx.controller.name,),
                 files=(FileSpec(MEMCACHED_CONF, memcached_conf(ctx.controller.private_ip)),),
                 commands=(enable_units("memcached"), "systemctl restart memcached"),
                 check="systemctl is-active --quiet memcached")]
