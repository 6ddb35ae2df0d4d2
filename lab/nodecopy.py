"""`lab copy NODE:SRC NODE:DST`: one file from one node of the lab to another, through this machine.

Through the user's machine, not host to host, on purpose:
- the hosts hold no key to each other, and should not: the lab's private key stays on the
  user's machine, where `lab down` cannot leave a copy of it behind on a host;
- the security group needs no rule for SSH between the nodes (the lab opens only the ports
  it uses);
- both ends are reached over the lab's own connections (its key, its pinned host keys), as
  root, so the notes' trouble with `scp -i key file user@ip:~` (a destination folder the
  login user may not write, a file owned by the login user afterwards) does not arise.
The price is that the bytes cross this machine's link twice; a lab copy moves at most
filecopy.MAX_BYTES (64 MiB), so that is seconds.

The guarantees are lab/filecopy.py's: the source is read whole (size and sha256 checked on
arrival), the destination is written whole or not at all, as root, keeping the source's
mode (or --mode) and the owner of a file it replaces (root:root when new), and its sha256
is compared with the source's.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from lab import filecopy
from labcore.errors import LabError, RemoteError
from labcore.inventory import Inventory, NodeRecord
from labcore.remote import Remote

ROUTE = "through this machine: the hosts hold no key to each other"
_OCTAL = re.compile(r"[0-7]{3,4}")


@dataclass(frozen=True)
class RelayRequest:
    source: NodeRecord
    source_path: str
    node: NodeRecord  # the destination's
    remote_path: str


def parse_copy(source: str, destination: str, inventory: Inventory) -> filecopy.CopyRequest | RelayRequest:
    """Both NODE:PATH: node to node; otherwise the local forms of filecopy.parse_request."""
    src, dst = filecopy.split_node(source), filecopy.split_node(destination)
    if src is None or dst is None:
        return filecopy.parse_request(source, destination, inventory)
    (src_name, src_path), (dst_name, dst_path) = src, dst
    filecopy.source_name(src_path or ".")  # a folder as the source is bad input, before any SSH
    return RelayRequest(filecopy.node_named(inventory, src_name, src_path),
                        src_path, filecopy.node_named(inventory, dst_name, dst_path), dst_path or ".")


def read_with_mode_command(path: str) -> str:
    """The source's mode (octal, or - when there is none), then filecopy.read_command's answer."""
    p = shlex.quote(path)
    return f"stat -L -c %a -- {p} 2>/dev/null || echo -; {filecopy.read_command(path)}"


def parse_read_with_mode(stdout: str, where: str) -> tuple[int, bytes]:
    mode, _, rest = stdout.partition("\n")
    data = filecopy.parse_read(rest, where)  # missing, folder, too large: its own line first
    if not _OCTAL.fullmatch(mode.strip()):
        raise RemoteError(f"{where}: the host's answer about its mode was not understood ({mode[:40]!r}); run "
                          f"`lab copy` again")
    return int(mode.strip(), 8), data


def relay(request: RelayRequest, source: Remote, destination: Remote, *, mode: int | None = None,
          mask: filecopy.Mask = str) -> filecopy.Copied:
    """Read the file whole from the source node, write it whole on the destination node (see the module doc)."""
    where = f"{request.source.name}:{request.source_path}"
    answer = filecopy.run_copy(source, read_with_mode_command(request.source_path))
    if not answer.ok:
        raise filecopy.failed(f"could not read {where}", answer.stderr, mask)
    source_mode, data = parse_read_with_mode(answer.stdout, where)
    name = filecopy.source_name(request.source_path)
    return filecopy.deliver(destination, request.remote_path, name, data,
                            source_mode if mode is None else mode, mask)


def refuse_force(force: bool) -> None:
    if force:
        raise LabError("--force is for a local destination; a node's file is replaced as root, keeping its owner")
