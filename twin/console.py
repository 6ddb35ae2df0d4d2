"""An instance's console, as EC2's GetConsoleOutput shows it: what the body printed at boot.

On EC2, cloud-init's last stage prints the host's SSH key fingerprints and keys to the
console (its write-ssh-key-fingerprints helper, every line through syslog's format with
the tag "ec2"), which is how a client learns the keys out of band. A twin body runs the
real cloud-init, whose units write to the console as they do on EC2 (journal+console);
systemd-nspawn writes the container's console to the body's console.log, and `tail`
reads it back as EC2 does, the last 64 KiB. `render_boot` writes cloud-init's key blocks
in Python, for the null body layer, which has no console of its own.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

CONSOLE_LIMIT_BYTES = 64 * 1024  # GetConsoleOutput: "the most recent 64 KB"
FINGERPRINTS = ("-----BEGIN SSH HOST KEY FINGERPRINTS-----", "-----END SSH HOST KEY FINGERPRINTS-----")
KEYS = ("-----BEGIN SSH HOST KEY KEYS-----", "-----END SSH HOST KEY KEYS-----")
RULE = "#" * 61


def tail(path: Path, limit: int = CONSOLE_LIMIT_BYTES) -> str | None:
    """The last limit bytes of a console log as text; None when there is no such file."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except FileNotFoundError:
        return None
    return data.decode("utf-8", "replace")


def fingerprint(public_key: str) -> str:
    """What `ssh-keygen -l` prints for a key line: "256 SHA256:... comment (ED25519)"."""
    words = public_key.split()
    key = load_ssh_public_key(" ".join(words[:2]).encode())
    digest = base64.b64encode(hashlib.sha256(base64.b64decode(words[1])).digest()).decode().rstrip("=")
    if isinstance(key, ed25519.Ed25519PublicKey):
        bits, kind = 256, "ED25519"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        bits, kind = key.curve.key_size, "ECDSA"
    elif isinstance(key, rsa.RSAPublicKey):
        bits, kind = key.key_size, "RSA"
    else:
        bits, kind = 1024, "DSA"
    comment = " ".join(words[2:]) or "no comment"
    return f"{bits} SHA256:{digest} {comment} ({kind})"


def syslog_line(text: str, when: datetime, tag: str = "cloud-init") -> str:
    """A line as `logger -s -p user.info -t cloud-init` prints it: "<14>Dec  2 02:51:20 cloud-init: text"."""
    return f"<14>{when:%b} {when.day:>2} {when:%H:%M:%S} {tag}: {text}"


def key_blocks(public_keys: list[str], when: datetime) -> list[str]:
    """cloud-init's two blocks for these keys ("type base64 comment" lines) as Debian 12's cloud-init
    22.4 prints them (/usr/lib/cloud-init/write-ssh-key-fingerprints): the fingerprints through
    logger, tagged cloud-init; the keys echoed as they are."""
    fingerprints = [RULE, FINGERPRINTS[0], *(fingerprint(k) for k in public_keys), FINGERPRINTS[1], RULE]
    return [syslog_line(line, when) for line in fingerprints] + [KEYS[0], *public_keys, KEYS[1]]


def render_boot(hostname: str, public_keys: list[str], when: datetime | None = None) -> str:
    """A console for a body without one (the null layer): a few boot lines, then the key blocks."""
    when = when or datetime.now(timezone.utc)
    boot = [f"systemd 252 running in system mode (the twin's null body {hostname})",
            "[  OK  ] Reached target multi-user.target - Multi-User System.",
            f"Debian GNU/Linux 12 {hostname} console"]
    return "\n".join(boot + key_blocks(public_keys, when)) + "\n"
