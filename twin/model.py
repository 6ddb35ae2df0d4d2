"""What the twin's reconciler wants each instance's body to be: plain data.

The reconciler (twin/reconciler.py) derives these from the EC2 API's state
(twin/desired.py); the body layer (twin/bodies.py, or twin/nullbodies.py without root)
makes the host match them and saves each as body.json, read back through `read_body`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import TypeAdapter, ValidationError

from twin.errors import TwinStateError


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
    region: str = ""  # where the instance lives in the API (a body that powers off tells it there)
    # False for a stopped instance: its body keeps its disk and volumes, but no container runs.
    running: bool = True
    # The primary ENI's MAC: the body's eth0 carries it and the twin's DHCP server leases
    # private_ip to it. Empty in bodies saved before it was recorded.
    mac: str = ""


_BODY = TypeAdapter(InstanceBody)


def body_from_dict(data: dict) -> InstanceBody:
    """How body layers read what they saved (dataclasses.asdict); pydantic checks every field."""
    return _BODY.validate_python(data)


def read_body(path: Path) -> InstanceBody:
    """The body saved in path (body.json); a TwinStateError naming the file if it is damaged."""
    try:
        return body_from_dict(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, ValueError, ValidationError) as exc:
        first = str(exc).splitlines()
        raise TwinStateError(path, f"not a saved instance body: {' '.join(first[:3])[:160]}") from exc


class BodyLayer(Protocol):
    """What the reconciler asks of the host (implemented in twin/bodies.py and twin/nullbodies.py).

    Every method is idempotent, and state lives on disk under the twin's state folder so
    that a new daemon, or `lab down` after the daemon died, can find and remove everything.
    """

    def ensure_network(self, subnet_cidr: str) -> None:
        """Bridge carrying the subnet (gateway = first address), NAT to the outside, forwarding."""

    def bodies(self) -> dict[str, InstanceBody]:
        """Instance id -> the body as last applied, for every body that exists on disk."""

    def start(self, body: InstanceBody) -> None:
        """Make the body if it is new, and boot its container if none runs (a new instance, a
        stopped one started again, a rebooted one); sshd comes up soon after."""

    def stop(self, instance_id: str) -> None:
        """Power off, then remove container, netns, veth, loop devices and files of the instance."""

    def power_off(self, body: InstanceBody) -> None:
        """A stopped instance: no container, but its disk and volume files stay for the next start."""

    def reboot(self, instance_id: str) -> None:
        """Ask the running body to reboot, as RebootInstances does; it comes back through ended()."""

    def ended(self) -> dict[str, str]:
        """Bodies whose container ended by itself since the last call: instance id -> "reboot",
        "poweroff", or how it died otherwise. Ends the layer caused itself are not reported."""

    def sync_volumes(self, body: InstanceBody) -> None:
        """Make the body's block devices match body.volumes (inject new, remove detached)."""

    def prune_volumes(self, existing: set[str]) -> list[str]:
        """Delete the files of volumes the API no longer has (and no body uses); what went."""

    def apply_firewall(self, bodies: list[InstanceBody]) -> None:
        """Replace the twin's nftables ruleset so that it allows exactly the bodies' ingress rules."""

    def host_public_keys(self, instance_id: str) -> list[str]:
        """The body's SSH host public keys ("ssh-ed25519 AAAA..."), as its console prints them."""

    def console_output(self, instance_id: str) -> str | None:
        """What the body printed to its console (the last 64 KiB, as EC2 keeps); None without a body."""

    def teardown_all(self) -> list[str]:
        """Remove every trace of the twin from this host, using only what is on disk; say what went."""
