"""The twin's instance metadata service (IMDS), as pure answers: a request in, (status, headers, body) out.

On EC2 each instance reads its own metadata at 169.254.169.254: cloud-init's Ec2 datasource
reads it at boot (login user's key, hostname, user data), and so may any program on the
host. The twin's daemon serves it on the bridge (twin/imds_server.py); each body reaches
it through a DNAT rule in its own network namespace (twin/netns.py), so the address the
request comes from is the instance's private address, which is how the instance is
known here, as EC2 knows it by its network interface.

IMDSv2 as EC2 does it: PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds
(1 to 21600) gives a token for that instance only; a GET carrying
X-aws-ec2-metadata-token must carry a valid one (401 otherwise); a GET without a token is
refused (401) when the instance was launched with HttpTokens=required and answered when
it is optional (IMDSv1). A PUT with X-Forwarded-For is refused (403), as EC2 refuses
tokens to requests that went through a proxy.

The paths are those cloud-init's Ec2 datasource crawls and a user reads: meta-data (with
public-keys/, placement/, block-device-mapping/, network/interfaces/macs/), user-data
(404 when the instance has none, as on EC2) and dynamic/instance-identity/document.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

IMDS_PORT = 18169  # where the daemon serves it, on each bridge gateway (one twin per machine)
TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "x-aws-ec2-metadata-token"
MAX_TTL_SECONDS = 21600
# The API versions cloud-init asks for before "latest" (and the oldest it accepts).
VERSIONS = ("1.0", "2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23", "latest")
_VERSION = re.compile(r"^(latest|1\.0|\d{4}-\d{2}-\d{2})$")

Answer = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class InstanceMeta:
    """What the metadata service knows of one instance (from the EC2 API's state)."""

    instance_id: str
    image_id: str
    instance_type: str
    private_ip: str
    private_dns: str
    availability_zone: str
    region: str
    mac: str
    tokens_required: bool  # MetadataOptions.HttpTokens == "required"
    public_ip: str = ""
    public_dns: str = ""
    key_name: str = ""
    public_key: str = ""  # the key pair's OpenSSH public key
    user_data: bytes | None = None  # as given at launch (decoded from base64); None: none given
    reservation_id: str = ""
    owner_id: str = ""
    subnet_id: str = ""
    subnet_cidr: str = ""
    vpc_id: str = ""
    vpc_cidr: str = ""
    security_groups: tuple[tuple[str, str], ...] = ()  # (id, name)
    root_device: str = "/dev/xvda"
    block_devices: tuple[tuple[str, str], ...] = ()  # (name in the listing, device), e.g. ("ebs1", "sdb")
    launch_time: str = ""


def _text(status: int, body: str | bytes, content_type: str = "text/plain") -> Answer:
    data = body.encode() if isinstance(body, str) else body
    return status, {"Content-Type": content_type}, data


NOT_FOUND = _text(404, "Not Found\n")
UNAUTHORIZED = _text(401, "Unauthorized\n")


def meta_tree(meta: InstanceMeta) -> dict:
    """The meta-data folder as nested dicts (a dict is a folder, a str a file)."""
    interface = {
        "device-number": "0", "interface-id": f"eni-{meta.instance_id[2:]}", "local-hostname": meta.private_dns,
        "local-ipv4s": meta.private_ip, "mac": meta.mac, "owner-id": meta.owner_id,
        "security-group-ids": "\n".join(g for g, _ in meta.security_groups),
        "security-groups": "\n".join(n for _, n in meta.security_groups),
        "subnet-id": meta.subnet_id, "subnet-ipv4-cidr-block": meta.subnet_cidr,
        "vpc-id": meta.vpc_id, "vpc-ipv4-cidr-block": meta.vpc_cidr, "vpc-ipv4-cidr-blocks": meta.vpc_cidr,
    }
    if meta.public_ip:
        interface.update({"public-hostname": meta.public_dns, "public-ipv4s": meta.public_ip})
    tree: dict = {
        "ami-id": meta.image_id, "ami-launch-index": "0", "ami-manifest-path": "(unknown)",
        "block-device-mapping": {"ami": meta.root_device, "root": meta.root_device, **dict(meta.block_devices)},
        "hostname": meta.private_dns, "instance-action": "none", "instance-id": meta.instance_id,
        "instance-life-cycle": "on-demand", "instance-type": meta.instance_type,
        "local-hostname": meta.private_dns, "local-ipv4": meta.private_ip, "mac": meta.mac,
        "network": {"interfaces": {"macs": {meta.mac: interface}}},
        "placement": {"availability-zone": meta.availability_zone, "region": meta.region},
        "reservation-id": meta.reservation_id,
        "security-groups": "\n".join(n for _, n in meta.security_groups),
        "services": {"domain": "amazonaws.com", "partition": "aws"},
    }
    if meta.public_ip:
        tree.update({"public-hostname": meta.public_dns, "public-ipv4": meta.public_ip})
    if meta.public_key:
        tree["public-keys"] = {f"0={meta.key_name}": {"openssh-key": meta.public_key.strip() + "\n"}}
    return tree


def identity_document(meta: InstanceMeta) -> str:
    """dynamic/instance-identity/document: the instance's identity as JSON (unsigned here)."""
    return json.dumps({
        "accountId": meta.owner_id, "architecture": "x86_64", "availabilityZone": meta.availability_zone,
        "billingProducts": None, "devpayProductCodes": None, "marketplaceProductCodes": None,
        "imageId": meta.image_id, "instanceId": meta.instance_id, "instanceType": meta.instance_type,
        "kernelId": None, "ramdiskId": None, "pendingTime": meta.launch_time, "privateIp": meta.private_ip,
        "region": meta.region, "version": "2017-09-30"}, indent=2)


def _listing(folder: dict) -> str:
    names = []
    for name, value in folder.items():
        if name.startswith("0=") and isinstance(value, dict):  # public-keys/ lists "0=keyname"
            names.append(name)
        else:
            names.append(name + "/" if isinstance(value, dict) else name)
    return "\n".join(names)


def _walk(tree: dict, parts: list[str]) -> Answer:
    node: dict | str = tree
    for part in parts:
        if not isinstance(node, dict):
            return NOT_FOUND
        keyed = {name.split("=", 1)[0] if name.startswith("0=") else name: name for name in node}
        if part not in keyed:
            return NOT_FOUND
        node = node[keyed[part]]
    return _text(200, _listing(node) if isinstance(node, dict) else node)


def answer_path(meta: InstanceMeta, path: str) -> Answer:
    """The answer to a GET of path (after the token check)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return _text(200, "\n".join(VERSIONS))
    version, rest = parts[0], parts[1:]
    if not _VERSION.match(version):
        return NOT_FOUND
    if not rest:
        return _text(200, "dynamic\nmeta-data\nuser-data" if meta.user_data is not None else "dynamic\nmeta-data")
    if rest == ["user-data"]:
        return NOT_FOUND if meta.user_data is None else (200, {"Content-Type": "application/octet-stream"},
                                                         meta.user_data)
    if rest[0] == "meta-data":
        return _walk(meta_tree(meta), rest[1:])
    if rest[0] == "dynamic":
        dynamic = {"instance-identity": {"document": identity_document(meta)}}
        return _walk(dynamic, rest[1:])
    return NOT_FOUND


@dataclass
class Tokens:
    """IMDSv2 session tokens, each good for one instance until its TTL runs out."""

    clock: Callable[[], float] = time.monotonic
    _issued: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (instance id, expiry)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, instance_id: str, ttl: int) -> str:
        token = secrets.token_urlsafe(40)
        now = self.clock()
        with self._lock:
            self._issued = {t: v for t, v in self._issued.items() if v[1] > now}  # forget the expired
            self._issued[token] = (instance_id, now + ttl)
        return token

    def valid(self, instance_id: str, token: str) -> bool:
        with self._lock:
            owner, expiry = self._issued.get(token, ("", 0.0))
        return owner == instance_id and expiry > self.clock()


def handle(method: str, path: str, headers: dict[str, str], meta: InstanceMeta | None, tokens: Tokens) -> Answer:
    """One request from the instance meta (None: no instance has the address it came from).

    headers: names in lower case."""
    if meta is None:
        return _text(403, "Forbidden: no instance of the twin has this address\n")
    path = path.split("?", 1)[0]
    if method == "PUT":
        if path.rstrip("/") != TOKEN_PATH:
            return _text(405, "Method Not Allowed\n")
        if "x-forwarded-for" in headers:
            return _text(403, "Forbidden\n")
        raw = headers.get(TTL_HEADER, "").strip()
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_TTL_SECONDS:
            return _text(400, "Bad Request: X-aws-ec2-metadata-token-ttl-seconds must be 1 to 21600\n")
        token = tokens.issue(meta.instance_id, int(raw))
        return 200, {"Content-Type": "text/plain", "X-aws-ec2-metadata-token-ttl-seconds": raw}, token.encode()
    if method not in ("GET", "HEAD"):
        return _text(405, "Method Not Allowed\n")
    token = headers.get(TOKEN_HEADER)
    if token is not None and not tokens.valid(meta.instance_id, token):
        return UNAUTHORIZED
    if token is None and meta.tokens_required:
        return UNAUTHORIZED
    return answer_path(meta, path)
