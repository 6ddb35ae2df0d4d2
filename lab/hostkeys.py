"""The hosts' SSH keys, learnt out of band: cloud-init prints them to the instance's console.

EC2's GetConsoleOutput returns that console (base64); the block between
`-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY KEYS-----` holds one
"type base64 comment" line per host key. `lab up` pins these in known_hosts before its
first SSH, so not even the first connection trusts what the network says. The console
can take minutes to show the block; a host whose console never does is trusted on first
use, with a warning line (the only case where a key is learnt from the connection, by
lab/ssh.py), and checked strictly from then on.
"""

from __future__ import annotations

import base64
import binascii
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from botocore.exceptions import ClientError
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from lab.ec2 import error_code, with_retry
from labcore.inventory import Inventory, NodeRecord
from labcore.paths import write_private

BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
END = "-----END SSH HOST KEY KEYS-----"
# What cloud-init prints (it leaves DSA keys out), in the order they are pinned: the first
# is the one paramiko asks the host for.
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
CONSOLE_TIMEOUT_SECONDS = 600.0
# The console is asked again every second while few are waited for: cloud-init prints the
# keys in its last stage, and each second between that and the next ask is a second more of
# `lab up`. Many nodes are asked less often, so the calls stay at CALLS_PER_SECOND, half of
# what EC2's token bucket for non-mutating actions refills (20 a second) per account.
POLL_SECONDS = 1.0
CALLS_PER_SECOND = 10.0
PROGRESS_EVERY_SECONDS = 30.0
MAX_PARALLEL_CALLS = 16
# Latest=True (the console as it is now) exists on Nitro instances only; Xen ones refuse it.
LATEST_REFUSED = frozenset({"UnsupportedOperation", "InvalidParameterValue", "InvalidParameterCombination"})
Progress = Callable[[str], None]


def decode_console(output: str | None) -> str:
    """GetConsoleOutput's Output field as text (it is base64; an empty console has none)."""
    if not output:
        return ""
    try:
        return base64.b64decode("".join(output.split()), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return output  # already text (some endpoints decode it)


def host_keys_from_console(text: str) -> list[str]:
    """"type base64" of each key in the last complete key block of the console, [] if none.

    Lines may carry a prefix (a timestamp, "ec2: ", "cloud-init[123]: ", syslog's "<14>"),
    and kernel messages may fall between them: a key starts at its type's name and must
    parse as that type of key; anything else in the block is skipped. A console holds a
    block per boot: the last one is the host's keys now, and while it is still being
    printed (no END yet) there are none to give (the caller asks again)."""
    blocks, current = [], None
    for line in text.splitlines():
        if BEGIN in line:
            current = []
        elif END in line and current is not None:
            blocks.append(current)
            current = None
        elif current is not None:
            key = _key_in(line)
            if key and key not in current:
                current.append(key)
    if current is not None:
        return []
    keys = next((block for block in reversed(blocks) if block), [])
    return sorted(keys, key=lambda k: KEY_TYPES.index(k.split()[0]))


def _key_in(line: str) -> str | None:
    words = line.split()
    for i, word in enumerate(words[:-1]):
        if word in KEY_TYPES:
            key = f"{word} {words[i + 1]}"
            try:
                load_ssh_public_key(key.encode())
            except (ValueError, UnsupportedAlgorithm):
                return None  # cut off, or spliced with another line: not a key
            return key
    return None


def _console_text(ec2, instance_id: str) -> str:
    """One GetConsoleOutput, the latest console where the instance offers it (raw ClientErrors)."""
    try:
        answer = ec2.get_console_output(InstanceId=instance_id, Latest=True)
    except ClientError as exc:
        if error_code(exc) not in LATEST_REFUSED:
            raise
        answer = ec2.get_console_output(InstanceId=instance_id)
    return decode_console(answer.get("Output"))


def console_host_keys(ec2, instance_id: str) -> list[str]:
    return host_keys_from_console(with_retry(_console_text, ec2, instance_id, retry_not_found=True))


def wait_for_console_keys(ec2, nodes: list[NodeRecord], *, timeout: float | None = None,
                          poll: float | None = None, progress: Progress) -> dict[str, list[str]]:
    """Node name -> its host keys, for every node whose console shows them within timeout.

    One GetConsoleOutput per node still waited for, all at once, every poll seconds (default:
    poll_seconds of the nodes waited for); a progress line every PROGRESS_EVERY_SECONDS names
    the nodes still waited for. timeout: CONSOLE_TIMEOUT_SECONDS unless given."""
    timeout = CONSOLE_TIMEOUT_SECONDS if timeout is None else timeout
    found: dict[str, list[str]] = {}
    started = time.monotonic()
    said = started
    while True:
        waiting = [n for n in nodes if n.name not in found]
        if waiting:
            with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CALLS, len(waiting))) as pool:
                for node, keys in zip(waiting, pool.map(lambda n: console_host_keys(ec2, n.instance_id), waiting)):
                    if keys:
                        found[node.name] = keys
        waiting = [n.name for n in nodes if n.name not in found]
        now = time.monotonic()
        if not waiting or now - started >= timeout:
            return found
        if now - said >= PROGRESS_EVERY_SECONDS:
            progress(f"  waiting for the host keys on the console of {', '.join(waiting)} "
                     f"({now - started:.0f} s of at most {timeout:.0f} s; cloud-init prints them once it has run)")
            said = now
        time.sleep(poll_seconds(len(waiting)) if poll is None else poll)


def poll_seconds(waiting: int) -> float:
    """The pause between two rounds of GetConsoleOutput calls for this many nodes."""
    return max(POLL_SECONDS, waiting / CALLS_PER_SECOND)


def pinned_hosts(path: Path) -> dict[str, list[str]]:
    """known_hosts as address -> its "address type base64" lines ({} when there is no file)."""
    pinned: dict[str, list[str]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 3 and not line.startswith("#"):
                pinned.setdefault(words[0], []).append(" ".join(words[:3]))
    return pinned


def pin_host_keys(inventory: Inventory, keys: dict[str, list[str]]) -> None:
    """known_hosts: exactly these keys for the nodes that have them; a node without keys keeps
    what it had (a key learnt on first use stays pinned); hosts no longer in the lab go."""
    path = Path(inventory.known_hosts)
    earlier = pinned_hosts(path)
    lines = []
    for node in inventory.nodes:
        if node.name in keys:
            lines += [f"{node.ssh_host} {key}" for key in keys[node.name]]
        else:
            lines += earlier.get(node.ssh_host, [])
    write_private(path, "".join(line + "\n" for line in lines))


def pin_from_console(ec2, inventory: Inventory, *, progress: Progress, timeout: float | None = None,
                     poll: float | None = None) -> dict[str, list[str]]:
    """Read every node's host keys from its console and pin them; warn for those never shown.

    Every console is read once; only the nodes with nothing pinned yet are waited for (a
    node pinned by an earlier `lab up` keeps its keys if its console no longer shows them:
    the console is a 64 KB tail, and a key learnt on first use is never waited for again).
    timeout: CONSOLE_TIMEOUT_SECONDS unless given; poll as wait_for_console_keys."""
    timeout = CONSOLE_TIMEOUT_SECONDS if timeout is None else timeout
    progress(f"reading the host keys of {len(inventory.nodes)} hosts from their consoles (GetConsoleOutput; "
             f"up to {timeout:.0f} s)")
    earlier = pinned_hosts(Path(inventory.known_hosts))
    keys = wait_for_console_keys(ec2, inventory.nodes, timeout=0, progress=progress)
    unpinned = [n for n in inventory.nodes if n.name not in keys and n.ssh_host not in earlier]
    if unpinned:
        keys.update(wait_for_console_keys(ec2, unpinned, timeout=timeout, poll=poll, progress=progress))
    pin_host_keys(inventory, keys)
    pinned = [n.name for n in inventory.nodes if n.name in keys]
    if pinned:
        progress(f"  host keys pinned from the console: {', '.join(pinned)}")
    for node in inventory.nodes:
        if node.name in keys:
            continue
        if node.ssh_host in earlier:
            progress(f"  {node.name}: its console shows no host keys now; the keys pinned earlier stay")
        else:
            progress(f"  warning: {node.name}'s console showed no host keys within {timeout:.0f} s: its key is "
                     f"trusted on first use and pinned from then on")
    return keys
