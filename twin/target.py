"""The local twin of EC2 as a lab target: a moto server on 127.0.0.1 whose instances are containers here.

What only the twin does lives here, as the target's hooks: check this machine and build
the image before `lab up`, start the daemon, reach hosts by private IP from the bridge's
gateway, and clean this machine after `lab down` (even when the daemon died, or its state
files are damaged). Host keys are pinned as on AWS: from each instance's console
(GetConsoleOutput), where the body's own cloud-init printed them.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import boto3

from lab.images import Image, image_by_id, image_by_name
from lab.target import Progress, Target
from labcore.errors import NotAvailableError
from labcore.paths import state_root
from twin import boot_units, client, server
from twin.errors import TwinStateError

BODY_TIMEOUT_SECONDS = 300
CONSOLE_POLL_SECONDS = 1.0  # the console is a file on this machine: asking often costs nothing


def state_dir() -> Path:
    """The twin's own folder beside the labs' (.lab/sim)."""
    return state_root() / "sim"


class TwinTarget(Target):
    name = "sim"
    ssh_via_private_ip = True
    host_os = "debian-12"
    strict_host_keys = "yes"  # the keys are pinned from the console before the first SSH

    def __init__(self, endpoint_url: str | None = None):
        super().__init__(endpoint_url)
        self.damaged: TwinStateError | None = None  # why connect() found no usable twin

    def _session(self, region: str):
        return boto3.session.Session(aws_access_key_id="sim", aws_secret_access_key="sim", region_name=region)

    def start(self, spec, progress: Progress) -> None:
        client.check_host()
        boot_units.apt_daily_seconds()  # bad input: one line before anything starts
        client.prepare_image(progress=progress)
        self.endpoint_url = client.ensure_running(state_dir(), spec.region)

    def connect(self) -> bool:
        """A damaged state folder is no usable twin: False, so that `lab down` cleans it up from disk."""
        try:
            self.endpoint_url = client.endpoint(state_dir())
        except TwinStateError as exc:
            self.damaged, self.endpoint_url = exc, None
        return self.endpoint_url is not None

    def require(self) -> TwinTarget:
        """connect(), or a one-line error saying to start the twin (or that its state is damaged)."""
        if not self.connect():
            if self.damaged:
                raise self.damaged
            raise NotAvailableError("the sim twin is not running: run `make lab-up` (lab up) first")
        return self

    def describe(self, spec) -> str:
        """One line; when the config's os is one the twin cannot boot, it says so and what to write
        instead of the twin switching silently."""
        where = f"target sim: a local twin of EC2 at {self.endpoint_url}"
        configured = self.config_os or spec.openstack.os
        if configured == self.host_os:
            return f"{where}; its hosts run Debian 12 (debian-12 profile), as the config says"
        return (f"{where}; the twin boots only Debian 12, so its hosts run Debian 12 with the {self.host_os} "
                f"profile and its login user, not the config's {configured} (which applies to TARGET=aws); "
                f"say `openstack: {{os: {self.host_os}}}` in the config to run the same OS on both")

    def caller_cidr(self, subnet_cidr: str) -> str:
        """The caller is this machine, reaching the hosts from the bridge's gateway address."""
        gateway = next(ipaddress.IPv4Network(subnet_cidr).hosts())
        return f"{gateway}/32"

    def find_image(self, ec2, spec) -> Image:
        if spec.ami:
            return image_by_id(ec2, spec.ami, spec.region)
        return image_by_name(ec2, ["self"], server.SIM_IMAGE_NAME, "twin (Debian 12)", spec.region)

    def pin_host_keys(self, ec2, inventory, progress: Progress) -> None:
        """As on AWS: each body's keys from its console. Waiting for the bodies first fails fast,
        naming the instance, when one was stopped or the daemon died."""
        from lab.hostkeys import pin_from_console

        client.wait_for_bodies(ec2, [n.instance_id for n in inventory.nodes], state_dir(),
                               timeout=BODY_TIMEOUT_SECONDS)
        pin_from_console(ec2, inventory, progress=progress, timeout=BODY_TIMEOUT_SECONDS, poll=CONSOLE_POLL_SECONDS)

    def down_without_api(self, paths, progress: Progress) -> list[str]:
        if self.damaged:
            progress(f"the twin's state was damaged ({self.damaged.path}): cleaning it up from what is on disk")
        return client.cleanup_without_daemon(state_dir())

    def after_down(self, progress: Progress) -> None:
        client.wait_until_gone(state_dir(), timeout=120, progress=progress)
