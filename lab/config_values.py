"""What a few config values may be, checked with no cloud call: region, SSH and HTTPS sources, expiry.

Pure functions: each returns the value (or what it means) or raises ValueError with the
sentence the user sees after `file: key:`. Every value they quote is cut to ~80 characters.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
from datetime import timedelta

from labcore.safeyaml import quote

# The widest SSH (or HTTPS) opening a config gets without `allow_wide: true`: a /8, 16,777,216 addresses.
WIDEST_SSH_SOURCES = 2 ** 24
# A security group holds 60 inbound rules by default; the lab's own (ICMP and the service ports) take 10.
MAX_SSH_SOURCES = 50
MAX_EXPIRY = timedelta(days=30)
NEVER = ("0", "never")
_DURATION = re.compile(r"(?:(?P<d>\d{1,5})d)?(?:(?P<h>\d{1,6})h)?(?:(?P<m>\d{1,8})m)?")
_DURATION_FORMS = "a duration such as 45m, 8h, 2d or 1h30m, or 0 / never for no expiry"


@functools.cache
def ec2_regions() -> frozenset[str]:
    """Every region botocore's endpoint data lists for EC2, in every partition (aws, aws-cn, aws-us-gov, ...).

    Read from the files botocore ships: no network, no credentials.
    """
    import botocore.session  # late: loading the endpoint data costs ~0.1 s, only when a config is read

    session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})  # no AWS_PROFILE
    return frozenset(region for partition in session.get_available_partitions()
                     for region in session.get_available_regions("ec2", partition_name=partition))


def check_region(region: str) -> str:
    """region itself when EC2 has it; else ValueError naming the closest regions EC2 does have."""
    regions = ec2_regions()
    if region in regions:
        return region
    close = difflib.get_close_matches(region, sorted(regions), n=3, cutoff=0.6) if len(region) <= 64 else []
    hint = f"did you mean {_either(close)}?" if close else "for example us-east-1, eu-west-1 or ap-northeast-2"
    raise ValueError(f"{quote(region)} is not a region botocore knows for EC2; {hint}")


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_ssh_sources(values: list[str], allow_wide: bool) -> list[str]:
    """ssh.allow_from: see check_sources."""
    return check_sources(values, allow_wide, "SSH", "ssh.allow_wide")


def check_https_sources(values: list[str], allow_wide: bool) -> list[str]:
    """https.allow_from (the TLS front door, 443): the same forms and bounds as SSH's."""
    return check_sources(values, allow_wide, "HTTPS", "https.allow_wide")


def check_sources(values: list[str], allow_wide: bool, what: str, wide_key: str) -> list[str]:
    """values when each is `auto` or an IPv4 CIDR and, unless allow_wide, all together cover at most a /8.

    The union is what counts (overlaps once), so [0.0.0.0/1, 128.0.0.0/1] is the whole internet
    as surely as 0.0.0.0/0, and so are 128 /8s or 256 /9s. what and wide_key name the opening
    (SSH or HTTPS) and its opt-in key in the error.
    """
    if len(values) > MAX_SSH_SOURCES:
        raise ValueError(f"expected at most {MAX_SSH_SOURCES} entries (a security group holds 60 rules and the "
                         f"lab's own take 10), got {len(values)}")
    networks = []
    for value in values:
        if value == "auto":
            continue
        try:
            networks.append(ipaddress.IPv4Network(value, strict=True))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"expected 'auto' or an IPv4 CIDR such as 203.0.113.7/32, got {quote(value)}") from exc
    if allow_wide:
        return values
    opt_in = f"name your own addresses, or set {wide_key}: true if you mean it"
    if any(net.prefixlen == 0 for net in networks):
        raise ValueError(f"0.0.0.0/0 would open {what} to the whole internet; {opt_in}")
    covered = sum(net.num_addresses for net in ipaddress.collapse_addresses(networks))
    if covered > WIDEST_SSH_SOURCES:
        raise ValueError(f"together these entries open {what} to {covered:,} addresses, more than a /8 "
                         f"({WIDEST_SSH_SOURCES:,}); {opt_in}")
    return values


def check_rule_count(ssh: list[str], https: list[str], https_set: bool) -> tuple[str, str] | None:
    """(key, what is expected) when SSH's and HTTPS's sources together need more rules than the group holds.

    Each source is one inbound rule per port; https_set: https.allow_from is in the config (else
    it is ssh.allow_from's, and the error names ssh.allow_from, the key to change).
    """
    count = len(set(ssh)) + len(set(https))
    if count <= MAX_SSH_SOURCES:
        return None
    key = "https.allow_from" if https_set else "ssh.allow_from"
    why = "" if https_set else " (HTTPS, 443, takes ssh.allow_from's entries when https.allow_from is not set)"
    return key, (f"expected at most {MAX_SSH_SOURCES} SSH and HTTPS sources together (a security group holds 60 "
                 f"rules and the lab's own take 10), got {count}{why}")


def expires_after_text(value: object) -> str:
    """The config's expires_after as text, once it parses (ValueError saying the accepted forms if not).

    ValueError even for a wrong type: pydantic turns only ValueError into a validation error.
    """
    if isinstance(value, bool):  # YAML reads no, off and false as booleans
        raise ValueError(f"expected {_DURATION_FORMS}, got the boolean {value} (write never, or 0)")  # noqa: TRY004
    if not isinstance(value, (int, str)):
        raise ValueError(f"expected {_DURATION_FORMS}, got {quote(value)}")  # noqa: TRY004
    text = "".join(str(value).split()).lower()
    parse_expiry(text)
    return text


def parse_expiry(text: str) -> timedelta | None:
    """How long a lab lives after `up` (None: it never expires); ValueError when text is no such duration."""
    if text in NEVER:
        return None
    if text.startswith("-"):
        raise ValueError(f"expected {_DURATION_FORMS}, got {quote(text)}: a lab cannot expire before it starts")
    if text.isdigit():
        raise ValueError(f"expected {_DURATION_FORMS}, got {quote(text)}: say the unit, {text[:6]}m, "
                         f"{text[:6]}h or {text[:6]}d")
    match = _DURATION.fullmatch(text)
    if not text or not match:
        raise ValueError(f"expected {_DURATION_FORMS}, got {quote(text)}")
    expiry = timedelta(days=int(match["d"] or 0), hours=int(match["h"] or 0), minutes=int(match["m"] or 0))
    if expiry > MAX_EXPIRY:
        raise ValueError(f"{quote(text)} is longer than 30 days, the longest a lab may run before it stops "
                         f"itself; use 30d or less, or never")
    return expiry or None
