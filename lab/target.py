"""Which EC2 the lab talks to: real AWS, or the local twin (a moto server on 127.0.0.1).

The rest of the code receives a boto3 EC2 client from here and cannot tell the two
apart: the endpoint URL and the credentials are the only difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.config import Config

TARGETS = ("aws", "sim")

# One retry policy, ours (lab/ec2.py, tenacity): botocore's own retries are switched off
# so that a throttled call is not retried 5 x 5 times and every retry is counted.
_CLIENT_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=32,
                        connect_timeout=10, read_timeout=60)


# Canonical's account; the seed guide's Ubuntu 18.04 LTS server image, newest first.
UBUNTU_OWNER = "099720109477"
UBUNTU_1804_NAME = "ubuntu/images/hvm-ssd/ubuntu-bionic-18.04-amd64-server-*"
# The twin registers this image in its moto server at start; its bodies run Debian 12.
SIM_IMAGE_NAME = "lab-sim/debian-12-amd64"


@dataclass(frozen=True)
class Target:
    name: str  # "aws" or "sim"
    endpoint_url: str | None = None  # None on aws: boto3 then honours AWS_ENDPOINT_URL itself

    @property
    def image_owners(self) -> list[str]:
        return ["self"] if self.name == "sim" else [UBUNTU_OWNER]

    @property
    def image_name(self) -> str:
        return SIM_IMAGE_NAME if self.name == "sim" else UBUNTU_1804_NAME

    @property
    def ssh_via_private_ip(self) -> bool:
        """The twin's hosts sit on a bridge of this machine: reach them by private IP."""
        return self.name == "sim"

    @property
    def host_os(self) -> str | None:
        """The OS the target's hosts really run, when the target decides it (the twin: Debian 12)."""
        return "debian-12" if self.name == "sim" else None

    def ec2_client(self, region: str):
        if self.name == "sim":
            session = boto3.session.Session(aws_access_key_id="sim", aws_secret_access_key="sim",
                                            region_name=region)
        else:
            session = boto3.session.Session(region_name=region)
        return session.client("ec2", endpoint_url=self.endpoint_url, config=_CLIENT_CONFIG)
