"""What the twin's reconciler wants each running instance's body to be: plain data.

The reconciler (lab/sim/reconciler.py) derives these from the EC2 API's state; the body
layer (lab/sim/bodies.py and friends) makes the host match them.
"""

from __future__ import annotations

from dataclasses import dataclass


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
