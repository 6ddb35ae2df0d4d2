"""Copy one file to or from a node, as root, over the lab's own connection (its key, its pinned host keys).

As the runner moves files (bootstrap/session.py), the bytes travel as base64 on stdin
through the Remote, never in argv, and a file is written whole or not at all: on the host
by bootstrap.render.write_command (a temp file, then mv), here by labcore.paths.write_atomic.
As root, so /etc/swift/*.conf and /etc/keystone/keystone.conf can be read.

Each direction asks the host once what is there (the destination, or the source's kind,
size and mode) before it moves a byte, and decides what to do in pure functions, so bad
input (no such folder, a folder where a file is wanted, a local file in the way) stops
with one line and nothing written. Both ends' sha256 are compared after the move.

Between two nodes (NODE:SRC NODE:DST) the file goes through this machine: lab/nodecopy.py.

A file copied out is 0600 here unless --mode says otherwise: a host's files hold the
lab's passwords (keystone.conf, proxy-server.conf). A file copied in keeps its local
mode (or --mode), and the owner of the file it replaces (root:swift on /etc/swift).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import posixpath
import re
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from invoke.exceptions import CommandTimedOut

from bootstrap.render import write_command
from labcore.errors import LabError, RemoteError
from labcore.inventory import Inventory, NodeRecord
from labcore.paths import read_bounded, write_atomic
from labcore.remote import Remote, RunResult

MAX_BYTES = 64 * 1024 * 1024  # the whole file crosses in memory, as base64
COPY_TIMEOUT = 600.0
OUT_MODE = 0o600
NEW_OWNER = "root:root"
_MODE = re.compile(r"[0-7]{3,4}")
_SHA = re.compile(r"[0-9a-f]{64}")
Mask = Callable[[str], str]


@dataclass(frozen=True)
class CopyRequest:
    node: NodeRecord
    remote_path: str  # as given: relative paths are from the ssh user's home, as with scp
    local_path: str
    inbound: bool  # True: local -> node ("in"); False: node -> local


@dataclass(frozen=True)
class Copied:
    where: str  # the copy's full name: node:/path or a local path
    size: int
    sha256: str


@dataclass(frozen=True)
class RemotePath:
    """What the host says about a path: dir, file (with owner), missing (with whether its folder exists), other."""

    kind: str
    owner: str = ""
    folder_exists: bool = True


def parse_mode(text: str | None) -> int | None:
    if text is None:
        return None
    if not _MODE.fullmatch(text):
        raise LabError(f"--mode {text!r}: expected an octal mode such as 0644 or 640")
    return int(text, 8)


def split_node(text: str) -> tuple[str, str] | None:
    """NODE:PATH when the text before the first ':' is a name without '/' (as scp reads it); else None."""
    head, colon, tail = text.partition(":")
    if not colon or not head or "/" in head:
        return None
    return head, tail


def parse_request(source: str, destination: str, inventory: Inventory) -> CopyRequest:
    """Which end is the node: one of source and destination must be NODE:PATH (exit 2 otherwise);
    both are lab/nodecopy.py's."""
    src, dst = split_node(source), split_node(destination)
    if src is None and dst is None:
        raise LabError(f"lab copy SRC DST: SRC, DST or both must be NODE:PATH, neither is (nodes: "
                       f"{', '.join(n.name for n in inventory.nodes)}; a local name with a colon: ./{source})")
    if src is not None and dst is not None:
        raise ValueError("both ends are nodes: lab.nodecopy.parse_copy is the parser of that form")
    name, path = dst if dst else src
    return CopyRequest(node_named(inventory, name, path), path or ".", source if dst else destination,
                       inbound=dst is not None)


def node_named(inventory: Inventory, name: str, path: str) -> NodeRecord:
    known = [n.name for n in inventory.nodes]
    if name not in known:
        raise LabError(f"no node named {name!r} in lab {inventory.lab} (nodes: {', '.join(known)}; a local name "
                       f"with a colon is written ./{name}:{path})")
    return inventory.node(name)


# ------------------------------------------------------------------ local -> node
def probe_command(paths: list[str]) -> str:
    """One line per path: dir, file OWNER:GROUP, missing yes|no (its folder exists), or other."""
    lines = []
    for path in paths:
        p = shlex.quote(path)
        lines.append(f"if [ -d {p} ]; then echo dir; elif [ -f {p} ]; then echo \"file $(stat -L -c %U:%G -- {p})\"; "
                     f"elif [ -e {p} ] || [ -L {p} ]; then echo other; "
                     f"elif [ -d \"$(dirname -- {p})\" ]; then echo missing yes; else echo missing no; fi")
    return "; ".join(lines)


def parse_probe(stdout: str, count: int) -> list[RemotePath]:
    found = []
    for line in stdout.splitlines()[:count]:
        kind, _, rest = line.strip().partition(" ")
        if kind == "file":
            found.append(RemotePath("file", owner=rest.strip()))
        elif kind == "missing":
            found.append(RemotePath("missing", folder_exists=rest.strip() == "yes"))
        elif kind in ("dir", "other"):
            found.append(RemotePath(kind))
    if len(found) != count:
        raise RemoteError(f"the host's answer about the destination was not understood: {stdout[:120]!r}; run "
                          f"`lab copy` again")
    return found


def upload_target(dst: str, name: str, node: str, states: list[RemotePath]) -> tuple[str, str]:
    """Where the file goes and the owner it gets: a folder DST (ending in / or one that exists) takes the name."""
    into_folder = dst.endswith("/") or states[0].kind == "dir"
    if dst.endswith("/") and states[0].kind != "dir":
        raise LabError(f"{node}:{dst}: no such folder on {node}")
    path = posixpath.join(dst, name) if into_folder else dst
    state = states[1] if into_folder else states[0]
    if state.kind == "dir":
        raise LabError(f"{node}:{path} is a folder: name the file to write, e.g. {node}:{path.rstrip('/')}/{name}")
    if state.kind == "other":
        raise LabError(f"{node}:{path} is not a regular file (a device, socket or dangling link): not replaced")
    if state.kind == "missing" and not state.folder_exists:
        raise LabError(f"{node}:{path}: its folder {posixpath.dirname(path) or '.'} does not exist on {node}")
    return path, state.owner if state.kind == "file" else NEW_OWNER


def _local_source(path: Path) -> os.stat_result:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise LabError(f"{path}: no such file") from None
    except PermissionError:
        raise LabError(f"{path}: not readable by you") from None
    if not stat.S_ISREG(info.st_mode):
        raise LabError(f"{path}: not a regular file (lab copy copies one file)")
    if not os.access(path, os.R_OK):
        raise LabError(f"{path}: not readable by you")
    if info.st_size > MAX_BYTES:
        raise LabError(f"{path}: {info.st_size} bytes, more than lab copy moves ({MAX_BYTES // 2**20} MiB)")
    return info


def push(request: CopyRequest, remote: Remote, *, mode: int | None = None, mask: Mask = str) -> Copied:
    """local -> node: the file is written whole on the node, with its local mode (or mode).

    mask: what a host's error text passes through before it is shown (Secrets.mask)."""
    local = Path(request.local_path)
    info = _local_source(local)
    return deliver(remote, request.remote_path, local.name, lambda: read_bounded(local, MAX_BYTES),
                   stat.S_IMODE(info.st_mode) if mode is None else mode, mask)


def deliver(remote: Remote, dst: str, name: str, data: Callable[[], bytes] | bytes, mode: int,
            mask: Mask = str) -> Copied:
    """Write data whole at dst on remote's node (a folder dst takes name), as root, with mode and
    the owner of the file it replaces (root:root when new); both ends' sha256 compared.

    data may be a function: the bytes are read only once the destination is known to be fine."""
    node = remote.name
    asked = [dst, posixpath.join(dst, name)]
    probe = run_copy(remote, probe_command(asked))
    if not probe.ok:
        raise failed(f"could not look at {node}:{dst}", probe.stderr, mask)
    path, owner = upload_target(dst, name, node, parse_probe(probe.stdout, len(asked)))
    data = data() if callable(data) else data
    digest = hashlib.sha256(data).hexdigest()
    command = f"{write_command(path, mode, owner)}; sha256sum -- {shlex.quote(path)}"
    written = run_copy(remote, command, stdin=base64.b64encode(data).decode("ascii"))
    if not written.ok:
        raise failed(f"could not write {node}:{path}", written.stderr, mask)
    if written.stdout.split()[:1] != [digest]:
        raise RemoteError(f"{node}:{path} does not hold what was sent (sha256 {written.stdout.split()[:1]} instead "
                          f"of {digest}); run `lab copy` again")
    return Copied(f"{node}:{path}", len(data), digest)


# ------------------------------------------------------------------ node -> local
def source_name(remote_path: str) -> str:
    """The name a file read from a node keeps in a destination folder; a path that names a folder is bad input."""
    name = posixpath.basename(remote_path.rstrip("/")) if remote_path not in (".", "") else ""
    if remote_path.endswith("/") or not name or name in (".", ".."):
        raise LabError(f"{remote_path}: name a file on the node, not a folder")
    return name


def download_target(dst: str, remote_path: str, force: bool) -> Path:
    """Where the local copy goes: a folder DST (ending in / or one that exists) takes the remote file's name."""
    name = source_name(remote_path)
    target = Path(dst)
    if dst.endswith("/") and not target.is_dir():
        raise LabError(f"{dst}: no such folder")
    if target.is_dir():
        target = target / name
    if target.is_dir():
        raise LabError(f"{target} is a folder: name the file to write")
    if not target.parent.is_dir():
        raise LabError(f"{target}: its folder {target.parent} does not exist")
    if target.exists() and not force:
        raise LabError(f"{target} exists: --force to overwrite it")
    return target


def read_command(path: str) -> str:
    """A header line (missing, dir, other, large SIZE, or file SIZE SHA256), then the file's bytes in base64.

    The file is copied to a temp file first, so the hash and the bytes are of one version.
    """
    p = shlex.quote(path)
    return (f"if [ ! -e {p} ]; then echo missing; elif [ -d {p} ]; then echo dir; elif [ ! -f {p} ]; then echo other; "
            f"else s=$(stat -L -c %s -- {p}); if [ \"$s\" -gt {MAX_BYTES} ]; then echo \"large $s\"; else "
            f"set -e; t=$(mktemp); trap 'rm -f \"$t\"' EXIT; cat -- {p} > \"$t\"; "
            f"echo \"file $(stat -c %s \"$t\") $(sha256sum < \"$t\" | cut -c1-64)\"; base64 < \"$t\"; fi; fi")


def parse_read(stdout: str, where: str) -> bytes:
    """The bytes of a read_command answer, checked against its size and sha256; bad input or RemoteError."""
    header, _, body = stdout.partition("\n")
    kind, *rest = header.split()
    if kind == "missing":
        raise LabError(f"{where}: no such file")
    if kind == "dir":
        raise LabError(f"{where} is a folder: lab copy copies one file")
    if kind == "other":
        raise LabError(f"{where}: not a regular file")
    if kind == "large":
        raise LabError(f"{where}: {rest[0]} bytes, more than lab copy moves ({MAX_BYTES // 2**20} MiB)")
    if kind != "file" or len(rest) != 2 or not rest[0].isdigit() or not _SHA.fullmatch(rest[1]):
        raise RemoteError(f"{where}: the host's answer was not understood ({header[:80]!r}); run `lab copy` again")
    try:
        data = base64.b64decode("".join(body.split()), validate=True)
    except binascii.Error:
        data = b""
    if len(data) != int(rest[0]) or hashlib.sha256(data).hexdigest() != rest[1]:
        raise RemoteError(f"{where}: the bytes that arrived are not the file's ({len(data)} of {rest[0]} bytes, or "
                          f"another sha256); run `lab copy` again")
    return data


def pull(request: CopyRequest, remote: Remote, *, mode: int | None = None, force: bool = False,
         mask: Mask = str) -> Copied:
    """node -> local: written whole here, 0600 unless mode; an existing file only with force."""
    target = download_target(request.local_path, request.remote_path, force)
    where = f"{request.node.name}:{request.remote_path}"
    answer = run_copy(remote, read_command(request.remote_path))
    if not answer.ok:
        raise failed(f"could not read {where}", answer.stderr, mask)
    data = parse_read(answer.stdout, where)
    if not write_atomic(target, data, mode=OUT_MODE if mode is None else mode, replace=force):
        raise LabError(f"{target} exists: --force to overwrite it")  # made meanwhile by someone else
    return Copied(str(target), len(data), hashlib.sha256(data).hexdigest())


def run_copy(remote: Remote, command: str, stdin: str | None = None) -> RunResult:
    try:
        return remote.run(command, stdin=stdin, timeout=COPY_TIMEOUT)
    except CommandTimedOut:
        raise RemoteError(f"{remote.name} did not finish the copy within {COPY_TIMEOUT:.0f} s; check the host "
                          f"(`lab ssh {remote.name}`), then run `lab copy` again") from None


def failed(what: str, stderr: str, mask: Mask) -> RemoteError:
    last = mask(stderr).strip().splitlines()[-1:] or ["no message"]
    return RemoteError(f"{what}: {last[0][:200]}; check the path and that the host runs (`lab status`), then run "
                       f"`lab copy` again")
