"""The twin's metadata service on the wire: an HTTP server on each bridge's gateway, fed from moto.

Served by the daemon (twin/daemon.py) on IMDS_PORT of the gateway address of every subnet
that has bodies; each body's own network namespace sends 169.254.169.254:80 there
(twin/netns.py). 169.254.169.254 itself is never put on an interface or a route of this
machine: it may be a cloud VM whose own agents read their own metadata service there.

The socket is bound with IP_FREEBIND, so it listens before the bridge has its address
(the reconciler makes the bridge in the same pass that boots the first body). Who asks
is known by the request's source address: the instance whose private address it is, in
any region the daemon reconciles (twin/imds.py answers). Each lookup asks moto, with the
reconciler's user agent so it does not count as a client's request.
"""

from __future__ import annotations

import base64
import binascii
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from twin.imds import IMDS_PORT, InstanceMeta, Tokens, handle

log = logging.getLogger(__name__)


_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)

Lookup = Callable[[str], "InstanceMeta | None"]  # private address -> the instance there


def _first(items: list[dict]) -> dict:
    return items[0] if items else {}


def instance_meta(ec2, instance: dict, region: str) -> InstanceMeta:
    """InstanceMeta from describe_instances' instance, plus the calls that add its user data,
    key, subnet and VPC (boto3 client ec2 on the twin's moto)."""
    iid = instance["InstanceId"]
    raw = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData").get("UserData") or {}
    user_data = None
    if raw.get("Value"):
        try:
            user_data = base64.b64decode(raw["Value"])
        except (binascii.Error, ValueError):  # moto checked it at launch; keep what it holds
            user_data = raw["Value"].encode()
    key_name, public_key = instance.get("KeyName", ""), ""
    if key_name:
        pairs = ec2.describe_key_pairs(KeyNames=[key_name], IncludePublicKey=True)["KeyPairs"]
        public_key = _first(pairs).get("PublicKey", "")
    subnet = _first(ec2.describe_subnets(SubnetIds=[instance["SubnetId"]])["Subnets"]) if instance.get("SubnetId") else {}
    vpc = _first(ec2.describe_vpcs(VpcIds=[instance["VpcId"]])["Vpcs"]) if instance.get("VpcId") else {}
    interface = _first(instance.get("NetworkInterfaces") or [])
    zone = instance.get("Placement", {}).get("AvailabilityZone", "")
    volumes = [m for m in instance.get("BlockDeviceMappings") or [] if m.get("DeviceName") != instance.get("RootDeviceName")]
    return InstanceMeta(
        instance_id=iid, image_id=instance.get("ImageId", ""), instance_type=instance.get("InstanceType", ""),
        private_ip=instance.get("PrivateIpAddress", ""), private_dns=instance.get("PrivateDnsName", ""),
        availability_zone=zone, region=region, mac=interface.get("MacAddress", "02:00:00:00:00:00"),
        tokens_required=(instance.get("MetadataOptions") or {}).get("HttpTokens") == "required",
        public_ip=instance.get("PublicIpAddress", ""), public_dns=instance.get("PublicDnsName", ""),
        key_name=key_name, public_key=public_key, user_data=user_data,
        owner_id=interface.get("OwnerId", ""), subnet_id=instance.get("SubnetId", ""),
        subnet_cidr=subnet.get("CidrBlock", ""), vpc_id=instance.get("VpcId", ""), vpc_cidr=vpc.get("CidrBlock", ""),
        security_groups=tuple((g["GroupId"], g.get("GroupName", "")) for g in instance.get("SecurityGroups") or []),
        root_device=instance.get("RootDeviceName") or "/dev/xvda",
        block_devices=tuple((f"ebs{n}", m["DeviceName"].removeprefix("/dev/"))
                            for n, m in enumerate(volumes, start=1)),
        launch_time=str(instance.get("LaunchTime", "")))


def moto_lookup(clients: Callable[[], list[tuple[object, str]]]) -> Lookup:
    """A Lookup over every (client, region) clients() gives: the running instance at an address."""
    def lookup(address: str) -> InstanceMeta | None:
        for ec2, region in clients():
            reservations = ec2.describe_instances(Filters=[
                {"Name": "private-ip-address", "Values": [address]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
            instances = [i for r in reservations for i in r.get("Instances", [])]
            if instances:
                return instance_meta(ec2, instances[0], region)
        return None
    return lookup


# How long one lookup answers for an address. cloud-init's Ec2 datasource walks the metadata
# tree one path a request (about fifty), and each lookup is five calls to moto: uncached,
# the walk took 7.8 s of a body's boot (cloud-init analyze blame, search-Ec2). EC2's own
# service also shows a change (user data, metadata options) a moment late.
LOOKUP_TTL_SECONDS = 2.0


def remembered(lookup: Lookup, ttl: float = LOOKUP_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> Lookup:
    """lookup, with each address's answer (an instance, or none) kept for ttl seconds."""
    kept: dict[str, tuple[float, InstanceMeta | None]] = {}
    lock = threading.Lock()

    def answer(address: str) -> InstanceMeta | None:
        with lock:
            hit = kept.get(address)
            if hit is not None and clock() - hit[0] < ttl:
                return hit[1]
        meta = lookup(address)
        with lock:
            kept[address] = (clock(), meta)
        return meta
    return answer


class _Handler(BaseHTTPRequestHandler):
    server_version = "EC2ws"  # what EC2's metadata service calls itself
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            meta = self.server.lookup(self.client_address[0])  # type: ignore[attr-defined]
        except Exception:
            log.exception("metadata lookup for %s failed", self.client_address[0])
            status, extra, body = 500, {"Content-Type": "text/plain"}, b"Internal Server Error\n"
        else:
            status, extra, body = handle(self.command, self.path, headers, meta, self.server.tokens)  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        log.debug("%s %s", self.client_address[0], format % args)


class _FreebindServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_IP, _IP_FREEBIND, 1)
        super().server_bind()


class MetadataService:
    """One HTTP server per gateway address, started on demand, all stopped together."""

    def __init__(self, lookup: Lookup, port: int = IMDS_PORT):
        self.lookup, self.port = lookup, port
        self.tokens = Tokens()
        self._servers: dict[str, tuple[ThreadingHTTPServer, threading.Thread]] = {}

    def serve_on(self, addresses: set[str]) -> None:
        """Listen on each address not listened on yet (a failure is logged and retried next time)."""
        for address in sorted(addresses - set(self._servers)):
            try:
                server = _FreebindServer((address, self.port), _Handler)
            except OSError as exc:
                log.error("metadata service on %s:%d: %s", address, self.port, exc)
                continue
            server.lookup, server.tokens = self.lookup, self.tokens  # type: ignore[attr-defined]
            thread = threading.Thread(target=server.serve_forever, name=f"imds-{address}", daemon=True)
            thread.start()
            self._servers[address] = (server, thread)
            log.info("metadata service listening on %s:%d", address, self.port)

    @property
    def addresses(self) -> list[str]:
        return sorted(self._servers)

    def stop(self) -> None:
        for server, thread in self._servers.values():
            server.shutdown()
            server.server_close()
            thread.join()
        self._servers.clear()
