"""The hosts' SSH keys, learnt out of band: cloud-init prints them to the instance's console.

EC2's GetConsoleOutput returns that console (base64); the block between
`-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY KEYS-----` holds one
"type base64 comment" line per host key. `lab up` pins these in known_hosts before its
first SSH, so not even the first connection trusts what the network says. The console
can take minutes to show the block; a host whose console never does is trusted on first
use, with a warning line (the only case where a key is learnt from the connection).
"""

from __future__ import annotations

import base64
import binascii
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from lab.ec2 import with_retry
from labcore.inventory import Inventory, NodeRecord
from labcore.paths import write_private

BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
END = "-----END SSH HOST KEY KEYS-----"
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "ssh-dss")
CONSOLE_TIMEOUT_SECONDS = 600.0
POLL_SECONDS = 10.0
Progress = Callable[[str], None]


def decode_console(output: str | None) -> str:
    """GetConsoleOutput's Output field as text (it is base64; an empty console has none)."""
    if not output:
        return ""
    try:
        return base64.b64decode(output).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return output  # already text (some endpoints decode it)


def host_keys_from_console(text: str) -> list[str]:
    """"type base64" of each key in the last complete key block of the console, [] if none.

    Lines may carry a prefix (a timestamp, "ec2: ", "cloud-init[123]: "): a key starts at
    its type's name."""
    blocks, current = [], None
    for line in text.splitlines():
        if BEGIN in line:
            current = []
        elif END in line and current is not None:
            blocks.append(current)
            current = None
        elif current is not None:
            key = _key_in(line)
            if key:
                current.append(key)
    return next((block for block in reversed(blocks) if block), [])


def _key_in(line: str) -> str | None:
    words = line.split()
    for i, word in enumerate(words[:-1]):
        if word in KEY_TYPES:
            try:
                base64.b64decode(words[i + 1], validate=True)
            except (binascii.Error, ValueError):
                return None
            return f"{word} {words[i + 1]}"
    return None


def console_host_keys(ec2, instance_id: str) -> list[str]:
    answer = with_retry(ec2.get_console_output, InstanceId=instance_id, retry_not_found=True)
    return host_keys_from_console(decode_console(answer.get("Output")))


def wait_for_console_keys(ec2, nodes: list[NodeRecord], *, timeout: float = CONSOLE_TIMEOUT_SECONDS,
                          poll: float = POLL_SECONDS, progress: Progress) -> dict[str, list[str]]:
    """Node name -> its host keys, for every node whose console shows them within timeout."""
    found: dict[str, list[str]] = {}
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    last_line = started
    while True:
        waiting = [n for n in nodes if n.name not in found]
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(waiting)))) as pool:
            for node, keys in zip(waiting, pool.map(lambda n: console_host_keys(ec2, n.instance_id), waiting)):
                if keys:
                    found[node.name] = keys
        waiting = [n.name for n in nodes if n.name not in found]
        if not waiting or time.monotonic() >= deadline:
            return found
        if time.monotonic() - last_line >= 30:
            progress(f"  waiting for the host keys on the console of {', '.join(waiting)} "
                     f"({time.monotonic() - started:.0f} s; cloud-init prints them once it has run)")
            last_line = time.monotonic()
        time.sleep(poll)


def pin_host_keys(inventory: Inventory, keys: dict[str, list[str]]) -> None:
    """known_hosts with exactly these keys, by each node's SSH address (nodes without keys left out)."""
    lines = [f"{node.ssh_host} {key}" for node in inventory.nodes for key in keys.get(node.name, [])]
    write_private(Path(inventory.known_hosts), "".join(line + "\n" for line in lines))


def pin_from_console(ec2, inventory: Inventory, *, progress: Progress, timeout: float = CONSOLE_TIMEOUT_SECONDS,
                     poll: float = POLL_SECONDS) -> dict[str, list[str]]:
    """Read every node's host keys from its console and pin them; warn for those never shown."""
    progress(f"reading the host keys of {len(inventory.nodes)} hosts from their consoles (GetConsoleOutput)")
    keys = wait_for_console_keys(ec2, inventory.nodes, timeout=timeout, poll=poll, progress=progress)
    pin_host_keys(inventory, keys)
    for node in inventory.nodes:
        if node.name not in keys:
            progress(f"  warning: {node.name}'s console showed no host keys within {timeout:.0f} s: its key is "
                     f"trusted on first use and pinned from then on")
    return keys
