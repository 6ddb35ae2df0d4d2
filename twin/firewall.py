"""Security groups as nftables rules: what may reach each instance, default deny.

Pure rendering: the ruleset follows from the bodies' ingress rules alone, and is applied
in one `nft -f` transaction (the old table is deleted and the new one added atomically).

Why the `ip` family and destination addresses rather than `bridge` rules on ports: a
security group is stateful (replies to an allowed flow come back), which needs
connection tracking. Kernels without bridge conntrack still track bridged IPv4 through
br_netfilter, which hands frames crossing the bridge to the ip family's forward hook.
Frames between containers cross that forward hook; packets from this machine (the
caller's SSH) leave through the output hook: both dispatch on the destination address to
the same per-instance chain, which ends in drop.
"""

from __future__ import annotations

from twin.model import IngressRule, InstanceBody

TABLE = "lab_sim"
FAMILY = "ip"


def _match(rule: IngressRule) -> str:
    sources = "{ " + ", ".join(rule.sources) + " }"
    base = f"ip saddr {sources}"
    if rule.protocol == "all":
        return f"{base} accept"
    if rule.protocol == "icmp":
        return f"{base} ip protocol icmp accept"
    ports = str(rule.from_port) if rule.from_port == rule.to_port else f"{rule.from_port}-{rule.to_port}"
    return f"{base} {rule.protocol} dport {ports} accept"


def chain_name(instance_id: str) -> str:
    return "in_" + instance_id.replace("-", "_")


DHCP_ANSWER = "        udp sport 67 udp dport 68 accept"


def render_ruleset(bodies: list[InstanceBody]) -> str:
    dispatch = [f"        ip daddr {b.private_ip} jump {chain_name(b.instance_id)}" for b in bodies]
    lines = [f"table {FAMILY} {TABLE} {{"]
    for hook in ("forward", "output"):
        # As in a VPC, security groups do not filter the DHCP server's answers (twin/dhcp.py).
        dhcp = [DHCP_ANSWER] if hook == "output" else []
        lines += [f"    chain {hook}_hook {{", f"        type filter hook {hook} priority 0; policy accept;",
                  "        ct state established,related accept", *dhcp, *dispatch, "    }"]
    for body in bodies:
        rules = [f"        {_match(r)}" for r in body.ingress if r.sources]
        lines += [f"    chain {chain_name(body.instance_id)} {{", *rules, "        drop", "    }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def apply_text(ruleset: str, table_exists: bool) -> str:
    """One transaction: replace the table (no moment without rules)."""
    prefix = f"delete table {FAMILY} {TABLE}\n" if table_exists else ""
    return prefix + ruleset
