"""The twin's network: one bridge carrying the subnet, a namespace and veth pair per instance, NAT out.

Each instance's namespace also sends 169.254.169.254:80 (EC2's metadata service) to the
daemon's metadata server on the bridge's gateway (twin/imds_server.py), by a DNAT rule in
that namespace's own nftables. 169.254.169.254 is never put on an interface or a route of
this machine: the machine may be a cloud VM whose own agents use their own metadata service.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from twin.hostcmd import sh
from twin.imds import IMDS_PORT

BRIDGE = "labbr0"
NAT_TABLE = "lab_sim_nat"
METADATA_ADDRESS = "169.254.169.254"
METADATA_TABLE = "lab_sim_imds"  # in each instance's namespace, never in this machine's


def gateway(subnet_cidr: str) -> str:
    net = ipaddress.IPv4Network(subnet_cidr)
    return f"{next(net.hosts())}/{net.prefixlen}"


def netns_name(instance_id: str) -> str:
    return f"lab-{instance_id[-12:]}"


def veth_name(instance_id: str) -> str:
    return f"lv{instance_id[-12:]}"[:15]


def link_exists(name: str) -> bool:
    return sh("ip", "link", "show", name, check=False).returncode == 0


def ensure_bridge(subnet_cidr: str) -> None:
    if not link_exists(BRIDGE):
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
    address = gateway(subnet_cidr)
    if address.split("/")[0] not in sh("ip", "-4", "addr", "show", BRIDGE).stdout:
        sh("ip", "addr", "add", address, "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    # Frames between instances must meet the security-group rules (twin/firewall.py).
    Path("/proc/sys/net/bridge/bridge-nf-call-iptables").write_text("1\n")
    rules = (f"table ip {NAT_TABLE} {{\n  chain postrouting {{\n    type nat hook postrouting priority 100;\n"
             f"    ip saddr {subnet_cidr} oifname != \"{BRIDGE}\" masquerade\n  }}\n}}\n")
    if sh("nft", "list", "table", "ip", NAT_TABLE, check=False).returncode == 0:
        rules = f"delete table ip {NAT_TABLE}\n" + rules
    sh("nft", "-f", "-", input=rules)


def ensure_instance_net(instance_id: str, private_ip: str, subnet_cidr: str, mac: str = "") -> None:
    """The body's eth0 carries its ENI's MAC (mac; a random one when the API gave none), as
    an instance's primary interface does: the twin's DHCP server answers by it (twin/dhcp.py)."""
    ns, veth = netns_name(instance_id), veth_name(instance_id)
    if not Path(f"/run/netns/{ns}").exists():
        sh("ip", "netns", "add", ns)
    if not link_exists(veth):
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", *(("address", mac) if mac else ()),
           "netns", ns)
    sh("ip", "link", "set", veth, "master", BRIDGE, "up")
    prefix = ipaddress.IPv4Network(subnet_cidr).prefixlen
    inside = sh("ip", "-n", ns, "-4", "addr", "show", "eth0").stdout
    if f"{private_ip}/" not in inside:
        sh("ip", "-n", ns, "addr", "add", f"{private_ip}/{prefix}", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    sh("ip", "-n", ns, "route", "replace", "default", "via", gateway(subnet_cidr).split("/")[0])
    sh("ip", "netns", "exec", ns, "nft", "-f", "-", input=metadata_rules(subnet_cidr))


def metadata_rules(subnet_cidr: str) -> str:
    """nft input for an instance's namespace: its 169.254.169.254:80 is the gateway's metadata
    server (replacing the table at once, so a restarted daemon can apply it again)."""
    target = f"{gateway(subnet_cidr).split('/')[0]}:{IMDS_PORT}"
    return (f"table ip {METADATA_TABLE}\ndelete table ip {METADATA_TABLE}\n"
            f"table ip {METADATA_TABLE} {{\n  chain output {{\n    type nat hook output priority -100;\n"
            f"    ip daddr {METADATA_ADDRESS} tcp dport 80 dnat to {target}\n  }}\n}}\n")


def remove_instance_net(instance_id: str) -> list[str]:
    removed = []
    if link_exists(veth_name(instance_id)):
        sh("ip", "link", "del", veth_name(instance_id), check=False)
        removed.append(f"veth {veth_name(instance_id)}")
    if Path(f"/run/netns/{netns_name(instance_id)}").exists():
        sh("ip", "netns", "del", netns_name(instance_id), check=False)
        removed.append(f"network namespace {netns_name(instance_id)}")
    return removed


def remove_all_nets() -> list[str]:
    removed = []
    for ns in sh("ip", "netns", "list", check=False).stdout.split("\n"):
        name = ns.split(" ")[0]
        if name.startswith("lab-"):
            sh("ip", "netns", "del", name, check=False)
            removed.append(f"network namespace {name}")
    if link_exists(BRIDGE):
        sh("ip", "link", "del", BRIDGE, check=False)
        removed.append(f"bridge {BRIDGE}")
    for family, table in (("ip", NAT_TABLE), ("ip", "lab_sim")):
        if sh("nft", "delete", "table", family, table, check=False).returncode == 0:
            removed.append(f"nftables table {family} {table}")
    return removed
