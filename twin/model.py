"""What the twin's reconciler wants each running instance's body to be: plain data.

The reconciler (twin/reconciler.py) derives these from the EC2 API's state; the body
layer (twin/bodies.py and friends) makes the host match them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class VolumeBody:
    volume_id: str
    size_gb: int
    nvme_index: int  # 1 for the first attached volume -> /dev/nvme1n1, as on a Nitro instance
    attach_device: str  # what the API was asked for, e.g. /dev/sdf


@dataclass(frozen=True)
class IngressRule:
    """One allowed inbound flow, group references already resolved to member addresses."""

    protocol: str  # "icmp", "tcp", "udp" or "all"
    from_port: int | None  # None for icmp/all
    to_port: int | None
    sources: tuple[str, ...]  # CIDRs, e.g. ("172.31.0.5/32", "172.31.0.6/32") or ("127.0.0.1/32",)


@dataclass(frozen=True)
class InstanceBody:
    instance_id: str
    lab: str  # the lab:name tag
    hostname: str  # Name tag's node part, e.g. controller
    private_ip: str
    subnet_cidr: str  # e.g. 172.31.0.0/20; the bridge holds the first address as gateway
    ssh_user: str
    public_key: str  # the key pair's OpenSSH public key
    volumes: tuple[VolumeBody, ...] = ()
    ingress: tuple[IngressRule, ...] = ()
    # e.g. t3.large: sets the container's CPU weight (twin/cpu.py). Empty in bodies saved
    # before it was recorded, and in the floor bench's lone container.
    instance_type: str = ""


def body_from_dict(data: dict) -> InstanceBody:
    """The inverse of dataclasses.asdict: how body layers read what they saved as JSON."""
    return InstanceBody(**{**data,
                           "volumes": tuple(VolumeBody(**v) for v in data.get("volumes", ())),
                           "ingress": tuple(IngressRule(**{**r, "sources": tuple(r["sources"])})
                                            for r in data.get("ingress", ()))})


class BodyLayer(Protocol):
    """What the reconciler asks of the host (implemented in twin/bodies.py).

    Every method is idempotent, and state lives on disk under the twin's state folder so
    that a new daemon, or `lab down` after the daemon died, can find and remove everything.
    """

    def ensure_network(self, subnet_cidr: str) -> None:
        """Bridge carrying the subnet (gateway = first address), NAT to the outside, forwarding."""

    def bodies(self) -> dict[str, InstanceBody]:
        """Instance id -> the body as last applied, for every container that exists on disk."""

    def start(self, body: InstanceBody) -> None:
        """Create and boot the container for body (sshd up soon after; start does not wait for it)."""

    def stop(self, instance_id: str) -> None:
        """Power off, then remove container, netns, veth, loop devices and files of the instance."""

    def sync_volumes(self, body: InstanceBody) -> None:
        """Make the container's block devices match body.volumes (inject new, remove detached)."""

    def apply_firewall(self, bodies: list[InstanceBody]) -> None:
        """Replace the twin's nftables ruleset so that it allows exactly the bodies' ingress rules."""

    def host_public_keys(self, instance_id: str) -> list[str]:
        """The container's SSH host public keys ("ssh-ed25519 AAAA..."), for known_hosts pinning."""

    def teardown_all(self) -> list[str]:
        """Remove every trace of the twin from this host, using only what is on disk; say what went."""
