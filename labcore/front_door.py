"""Where the user's machine reaches the cloud: the controller's TLS front door (HTTPS on 443).

The guide's URLs (`http://controller:5000/v3`, `http://controller:8080`) name a host only the
lab's own hosts can resolve and reach. One door on the controller serves the dashboard, the
identity API and the object store under three paths, as DevStack's tls-proxy does, so the
user's machine needs one name, one port and one CA. This module is the one place that says
which name that is and what the URLs behind it are; the plan (Apache, the catalog), the
certificate, the security group and the laptop openrc files all read it. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from labcore.inventory import Inventory

PORT = 443
IDENTITY_PATH = "/identity"
# The Swift proxy is served at the door's root (/v1, /info, /crossdomain.xml), not under a prefix:
# a TempURL's or a form POST's signature covers the path the client sees, and Swift checks it
# against the path it receives, so behind a stripped /object-store every signed URL was refused
# (Tempest: 401 "Temp URL invalid", "FormPost: Invalid Signature").
OBJECT_STORE_PATH = ""
DASHBOARD_PATH = "/dashboard"


@dataclass(frozen=True)
class FrontDoor:
    host: str  # the name (or address) the user's machine puts in its URLs
    names: tuple[str, ...]  # DNS names the server certificate must carry
    addresses: tuple[str, ...]  # IP addresses the server certificate must carry

    @property
    def base(self) -> str:
        return f"https://{self.host}"

    @property
    def identity_url(self) -> str:
        """The public identity endpoint (the catalog's and the laptop openrc's OS_AUTH_URL)."""
        return f"{self.base}{IDENTITY_PATH}/v3"

    @property
    def object_store_url(self) -> str:
        """The public object-store endpoint, in the guide's form with the project's account (at the root)."""
        return f"{self.base}{OBJECT_STORE_PATH}/v1/AUTH_%(project_id)s"

    @property
    def dashboard_url(self) -> str:
        return f"{self.base}{DASHBOARD_PATH}/"


def front_door(inventory: Inventory) -> FrontDoor:
    """The controller's door as the machine that runs the lab reaches it.

    On AWS the public DNS name comes first: inside the VPC it resolves to the controller's
    private address, so the lab's own hosts reach the same URLs without leaving the VPC (a
    host calling a public IP would come back through the internet gateway and meet the
    security group). `lab up` therefore refuses a `subnet:` whose VPC has no DNS hostnames
    (lab/network.require_vpc_dns); the public IP is used only for an instance that has no DNS
    name anyway. On the twin the machine reaches the controller at its container's address.
    """
    node = inventory.controller
    public_dns = node.public_dns
    if inventory.target == "sim" or not (public_dns or node.public_ip):
        return FrontDoor(node.ssh_host, (), (node.ssh_host,))
    names = (public_dns,) if public_dns else ()
    addresses = (node.public_ip,) if node.public_ip else ()
    return FrontDoor(public_dns or node.public_ip, names, addresses)
