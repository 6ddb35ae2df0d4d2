"""The twin's EC2 API: a moto server on 127.0.0.1, and the image its instances boot.

moto keeps its state per region, in memory, so the sim image is registered lazily in
each region a lab asks for (`ensure_image`, idempotent) rather than in all of them.
"""

from __future__ import annotations

import logging

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from lab.target import SIM_IMAGE_NAME

HOST = "127.0.0.1"
# Short timeouts and no retries: asking "are you there?" must answer fast either way.
_PROBE_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
_CLIENT_CONFIG = Config(retries={"total_max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)


def start_server() -> tuple[ThreadedMotoServer, str]:
    """Start moto on a free port of 127.0.0.1; the server and its endpoint URL."""
    # One request per reconcile call would flood the log with werkzeug access lines.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def ec2_client(endpoint: str, region: str, *, probe: bool = False):
    """A boto3 EC2 client for the twin (its credentials are not secret: moto accepts any)."""
    session = boto3.session.Session(aws_access_key_id="sim", aws_secret_access_key="sim", region_name=region)
    return session.client("ec2", endpoint_url=endpoint, config=_PROBE_CONFIG if probe else _CLIENT_CONFIG)


def answers(endpoint: str, region: str = "us-east-1") -> bool:
    """Whether a moto server answers EC2 calls at endpoint."""
    try:
        ec2_client(endpoint, region, probe=True).describe_regions()
    except Exception as exc:  # any failure means "not answering"; the caller decides what to do
        logging.getLogger(__name__).debug("endpoint %s does not answer: %s", endpoint, exc)
        return False
    return True


def ensure_image(endpoint: str, region: str) -> str:
    """The sim image's id in region, registering it first if this region has none yet."""
    ec2 = ec2_client(endpoint, region)
    found = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [SIM_IMAGE_NAME]}])["Images"]
    if found:
        return found[0]["ImageId"]
    answer = ec2.register_image(Name=SIM_IMAGE_NAME, Description="Debian 12 body of the local EC2 twin",
                                Architecture="x86_64", RootDeviceName="/dev/xvda", VirtualizationType="hvm")
    return answer["ImageId"]
