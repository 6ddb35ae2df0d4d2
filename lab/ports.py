"""The one list of ports the lab's roles open to each other; the security group and the docs read it.

Every rule is from the lab's own security group (the group references itself), never
from an address range: nodes talk to each other, nobody else talks to them. The two
exceptions, SSH and the HTTPS front door, are opened to the config's addresses only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServicePort:
    service: str
    protocol: str  # "tcp" or "udp"
    from_port: int
    to_port: int
    role: str  # the role that listens
    # The auth modes (config `auth:`) whose lab runs this service: a TempAuth lab has no MariaDB,
    # RabbitMQ, etcd or Keystone, so its group opens none of their ports.
    modes: tuple[str, ...] = ("keystone", "tempauth")

    @property
    def label(self) -> str:
        span = str(self.from_port) if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}"
        return f"{span}/{self.protocol}"


KEYSTONE_ONLY = ("keystone",)

SERVICE_PORTS: tuple[ServicePort, ...] = (
    ServicePort("MariaDB", "tcp", 3306, 3306, "controller", KEYSTONE_ONLY),
    ServicePort("RabbitMQ", "tcp", 5672, 5672, "controller", KEYSTONE_ONLY),
    ServicePort("Memcached", "tcp", 11211, 11211, "controller"),
    ServicePort("etcd", "tcp", 2379, 2380, "controller", KEYSTONE_ONLY),
    ServicePort("Keystone", "tcp", 5000, 5000, "controller", KEYSTONE_ONLY),
    ServicePort("Swift proxy", "tcp", 8080, 8080, "controller"),
    ServicePort("NTP (chrony)", "udp", 123, 123, "controller"),
    ServicePort("Swift object/container/account", "tcp", 6200, 6202, "object"),
    ServicePort("rsync (Swift replication)", "tcp", 873, 873, "object"),
)

SSH_PORT = 22
# The controller's TLS front door (dashboard, identity, object store): a Keystone lab's one opening
# besides SSH, from https.allow_from (default ssh.allow_from) only; labcore/front_door.py says its URLs.
HTTPS_PORT = 443


def ports_for(auth: str) -> tuple[ServicePort, ...]:
    """The service ports a lab of this auth mode uses (and its security group opens)."""
    return tuple(p for p in SERVICE_PORTS if auth in p.modes)
