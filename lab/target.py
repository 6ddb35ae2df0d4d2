"""Which EC2 the lab talks to, as an object that carries what differs: real AWS or the local twin.

The rest of the code receives a boto3 EC2 client from a Target and cannot tell the two
apart; what does differ (starting the twin, the caller's address, where host keys come
from, what is left to clean after `down`) is a method of the target, never an `if` on its
name. The twin's target lives in twin/target.py and is imported only when asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

import boto3
from botocore.config import Config

from lab.images import OFFICIAL_IMAGES, Image, ImageQuery, find_newest, image_by_id

if TYPE_CHECKING:
    from lab.config import LabSpec
    from labcore.inventory import Inventory
    from labcore.paths import LabPaths

Progress = Callable[[str], None]

# One retry policy, ours (lab/ec2.py, tenacity): botocore's own retries are switched off
# so that a throttled call is not retried 5 x 5 times and every retry is counted.
CLIENT_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=32,
                       connect_timeout=10, read_timeout=60)


class Target:
    """What every target answers; subclasses say what is their own."""

    name = ""
    ssh_via_private_ip = False  # reach hosts by private IP (the twin's sit on a bridge of this machine)
    host_os: str | None = None  # the OS the target's hosts really run, when the target decides it
    strict_host_keys = "accept-new"  # ssh_config's StrictHostKeyChecking once `lab up` has run

    def __init__(self, endpoint_url: str | None = None):
        self.endpoint_url = endpoint_url
        self.config_os: str | None = None  # the config's os, when effective_spec replaced it

    def effective_spec(self, spec: "LabSpec") -> "LabSpec":
        """The spec this target runs: a target that boots one OS (host_os) whatever the config says
        runs that OS's profile and image login user; describe() says so at `lab up`."""
        if self.host_os is None or self.host_os == spec.openstack.os:
            return spec
        self.config_os = spec.openstack.os
        return spec.model_copy(update={"openstack": spec.openstack.model_copy(update={"os": self.host_os})})

    def _session(self, region: str):
        return boto3.session.Session(region_name=region)

    def ec2_client(self, region: str):
        return self._session(region).client("ec2", endpoint_url=self.endpoint_url, config=CLIENT_CONFIG)

    def start(self, spec: "LabSpec", progress: Progress) -> None:
        """Make this target's EC2 reachable for a run that creates things (`lab up`)."""

    def connect(self) -> bool:
        """Find this target's EC2 for a run that reads or deletes; False when there is none."""
        return True

    def describe(self, spec: "LabSpec") -> str | None:
        """A line for `lab up` saying what this target is, when it is not plain AWS."""
        return None

    def caller_cidr(self, subnet_cidr: str) -> str:
        """The address SSH comes from, for `allow_from: [auto]`."""
        raise NotImplementedError

    def find_image(self, ec2, spec: "LabSpec") -> Image:
        raise NotImplementedError

    def pin_host_keys(self, ec2, inventory: "Inventory", progress: Progress) -> None:
        """Write the hosts' SSH host keys to the inventory's known_hosts before the first SSH."""

    def down_without_api(self, paths: "LabPaths", progress: Progress) -> list[str]:
        """When connect() found no EC2: remove what the lab left on this machine; what went."""
        return []

    def after_down(self, progress: Progress) -> None:
        """After `lab down` deleted the lab's resources through the API."""


class AwsTarget(Target):
    """Real EC2 through the standard boto3 chain (AWS_PROFILE, AWS_REGION, credentials,
    AWS_ENDPOINT_URL): the only target that ever spends money."""

    name = "aws"
    # Host keys come out of band (the console, pin_host_keys) before the first SSH.
    strict_host_keys = "yes"

    def start(self, spec: "LabSpec", progress: Progress) -> None:
        """No EC2 call before the credentials are known to exist (one line, exit 1, if not)."""
        from lab.ec2 import set_lab_instance_types
        from lab.ec2_errors import check_credentials

        check_credentials(lambda: self._session(spec.region))
        set_lab_instance_types({node: node_spec.type for node, node_spec in spec.nodes.items()})

    def connect(self) -> bool:
        """Credentials are there (one line, exit 1, if not): `down` and `status` need them too."""
        from lab.ec2_errors import check_credentials

        check_credentials(lambda: self._session(None))
        return True

    def pin_host_keys(self, ec2, inventory: "Inventory", progress: Progress) -> None:
        """Each host's keys as cloud-init printed them to its console (GetConsoleOutput)."""
        from lab.hostkeys import pin_from_console

        pin_from_console(ec2, inventory, progress=progress)

    def image_query(self, os: str) -> ImageQuery:
        """Where the official images of os are published (lab/images.py: Canonical's, Debian's)."""
        return OFFICIAL_IMAGES[os]

    def caller_cidr(self, subnet_cidr: str) -> str:
        from lab.network import detect_caller_cidr

        return detect_caller_cidr(subnet_cidr)

    def find_image(self, ec2, spec: "LabSpec") -> Image:
        """`ami:` by id, else the newest official image of the config's OS; deprecated ones included."""
        query = self.image_query(spec.openstack.os)
        if spec.ami:
            return image_by_id(ec2, spec.ami, spec.region, hint=query.cli_hint(spec.region))
        return find_newest(ec2, query, spec.region)


# name -> "module:class"; a target's module is imported only when it is asked for.
_REGISTRY = {"aws": "lab.target:AwsTarget", "sim": "twin.target:TwinTarget"}
TARGETS = tuple(_REGISTRY)


def target_for(name: str, endpoint_url: str | None = None) -> Target:
    """The target called name (`--target`)."""
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)(endpoint_url)
