"""The twin's security-group rules, rendered for nftables (no root needed)."""

from __future__ import annotations

from twin.firewall import render_ruleset
from twin.model import IngressRule, InstanceBody

MEMBERS = ("172.31.0.4/32", "172.31.0.5/32")


def chain(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(f"    chain {name} {{") + 1
    return [line.strip() for line in lines[start:lines.index("    }", start)]]


def body(iid: str, ip: str, ingress=()) -> InstanceBody:
    return InstanceBody(iid, "rocky-lab", iid, ip, "172.31.0.0/20", "ubuntu", "ssh-ed25519 AAAA", (), tuple(ingress))


def test_the_self_referencing_icmp_rule_lets_only_group_members_ping():
    rules = [IngressRule("icmp", None, None, MEMBERS), IngressRule("tcp", 22, 22, ("172.31.0.1/32",))]
    text = render_ruleset([body("i-1", "172.31.0.4", rules)])
    assert "ip saddr { 172.31.0.4/32, 172.31.0.5/32 } ip protocol icmp accept" in text
    assert "ip saddr { 172.31.0.1/32 } tcp dport 22 accept" in text
    assert chain(text, "in_i_1")[-1] == "drop"


def test_without_rules_an_instance_accepts_nothing_new():
    text = render_ruleset([body("i-2", "172.31.0.6")])
    assert chain(text, "in_i_2") == ["drop"]
    assert "ip daddr 172.31.0.6 jump in_i_2" in text


def test_port_ranges_udp_and_all_protocols():
    rules = [IngressRule("tcp", 6200, 6202, MEMBERS), IngressRule("udp", 123, 123, MEMBERS),
             IngressRule("all", None, None, ("10.0.0.0/8",))]
    text = render_ruleset([body("i-3", "172.31.0.4", rules)])
    assert "tcp dport 6200-6202 accept" in text and "udp dport 123 accept" in text
    assert "ip saddr { 10.0.0.0/8 } accept" in text


def test_replies_to_allowed_flows_come_back_like_a_stateful_security_group():
    text = render_ruleset([body("i-4", "172.31.0.4")])
    for hook in ("forward_hook", "output_hook"):
        assert chain(text, hook)[1] == "ct state established,related accept"
