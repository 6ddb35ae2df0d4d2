"""Fabric connections to the lab's hosts, trusting exactly the host keys the lab knows.

`lab up` pins every host's keys in .lab/<name>/known_hosts before the first connection:
the twin's from the bodies it made, AWS's from each instance's console (lab/hostkeys.py).
A host found there is checked strictly: a different key stops the run at once, naming the
host (it is never retried as "not answering yet"). Only a host missing from the file (its
console never showed its keys) is trusted on first use, with a warning line, and pinned
from then on. Never StrictHostKeyChecking=no, never the user's ~/.ssh/known_hosts.
"""

from __future__ import annotations

import io
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import paramiko
from fabric import Connection
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, stop_when_event_set, wait_fixed

from labcore.errors import RemoteError
from labcore.inventory import Inventory, NodeRecord
from labcore.remote import RemoteFactory, RunResult

CONNECT_TIMEOUT = 10
_known_hosts_lock = threading.Lock()


def sudo_wrap(command: str, stdin: str | None = None) -> tuple[str, str]:
    """Run as root without ever waiting for a password (cloud users have NOPASSWD sudo).

    The command travels on stdin, ahead of its own input, never in sudo's argv: sudo logs
    its argv on the host (journal, auth.log) and commands may carry passwords. GNU head
    -c reads exactly the script's bytes, so what follows is left as the command's stdin.
    """
    script = command.encode()
    return f"sudo -n sh -c 'eval \"$(head -c {len(script)})\"'", command + (stdin or "")


class _WholeStream(io.StringIO):
    """stdin for invoke that hands over all of its text at the first read.

    invoke reads a stream that is not a terminal one byte per loop and naps 10 ms between
    loops: 100 bytes a second, so a 4 KB config file took 40 s to send. Answering every
    read with all that is left sends it in one write; the next read's "" is EOF.
    """

    def read(self, size: int | None = -1) -> str:
        return super().read()


Warn = Callable[[str], None]


class HostKeyChanged(RemoteError):
    """The host answered with a key other than the one pinned for it: not retried, never accepted."""


class LoginRefused(RemoteError):
    """sshd answered and refused the lab's user and key: not "not up yet", so never waited out.

    On an EC2 image cloud-init installs the key pair for the image's login user before sshd
    starts (cloud-init.service is ordered before it), so a refusal at the first answer is
    final: usually `ssh.user` is not the image's user (ubuntu on Ubuntu, admin on Debian)."""


def _warn_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _RecordFirstContact(paramiko.MissingHostKeyPolicy):
    """Trust on first use, for a host whose keys the lab could not learn out of band:
    accept the key it shows, say so in a warning line, and write it down (0600)."""

    def __init__(self, path: Path, node: NodeRecord, warn: Warn):
        self.path, self.node, self.warn = path, node, warn

    def missing_host_key(self, client, hostname, key):
        with _known_hosts_lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
            self.path.chmod(0o600)
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.warn(f"warning: {self.node.name} ({hostname}): its host key was not known in advance; trusting "
                  f"{key.get_name()} {key.fingerprint} on first use and pinning it in {self.path}")


def known_host_names(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {line.split()[0] for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}


class FabricRemote:
    """One host over SSH; one connection, opened on first use, used by one thread at a time."""

    def __init__(self, node: NodeRecord, inventory: Inventory, warn: Warn = _warn_on_stderr):
        self.name = node.name
        self.node = node
        self.known_hosts = Path(inventory.known_hosts)
        self.key_file = inventory.key_file
        self.conn = Connection(node.ssh_host, user=node.ssh_user, connect_timeout=CONNECT_TIMEOUT,
                               connect_kwargs={"key_filename": [inventory.key_file], "look_for_keys": False,
                                               "allow_agent": False})
        client = self.conn.client
        client._system_host_keys = paramiko.HostKeys()  # never the user's ~/.ssh/known_hosts
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        if node.ssh_host in known_host_names(self.known_hosts):
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            client.set_missing_host_key_policy(_RecordFirstContact(self.known_hosts, node, warn))

    def run(self, command: str, *, sudo: bool = True, stdin: str | None = None,
            timeout: float | None = None) -> RunResult:
        text, stdin = sudo_wrap(command, stdin) if sudo else (command, stdin)
        try:
            result = self.conn.run(text, warn=True, hide=True, pty=False, timeout=timeout,
                                   in_stream=_WholeStream(stdin) if stdin is not None else False)
        except paramiko.BadHostKeyException as exc:
            raise HostKeyChanged(
                f"{self.name} ({self.node.ssh_host}) answered with host key {exc.key.get_name()} "
                f"{exc.key.fingerprint}, not the one pinned for it in {self.known_hosts}: someone may be in "
                f"between, or the host was rebuilt; check its console (EC2 console, Get system log), and if it was "
                f"rebuilt remove its lines from {self.known_hosts} and run the command again") from None
        except paramiko.AuthenticationException:
            raise LoginRefused(
                f"{self.name} ({self.node.ssh_host}) refused SSH login as {self.node.ssh_user} with the key "
                f"{self.key_file}: check that `ssh: {{user: ...}}` in the config is the image's login user (ubuntu on "
                f"Ubuntu, admin on Debian; leave it out for that default) and that the key is the lab's, then run "
                f"the command again") from None
        except (paramiko.SSHException, socket.error, EOFError) as exc:
            raise RemoteError(f"{self.name} ({self.node.ssh_host}): SSH failed: {exc}; check that it runs "
                              f"(`lab status`) and that ssh.allow_from holds your address, then run the command "
                              f"again") from None
        return RunResult(result.exited, result.stdout, result.stderr)

    def close(self) -> None:
        self.conn.close()


def fabric_factory(inventory: Inventory, warn: Warn = _warn_on_stderr) -> RemoteFactory:
    """One FabricRemote per node, made on first use; warn gets the trust-on-first-use lines."""
    cache: dict[str, FabricRemote] = {}
    lock = threading.Lock()

    def factory(node: NodeRecord) -> FabricRemote:
        with lock:
            if node.name not in cache:
                cache[node.name] = FabricRemote(node, inventory, warn)
            return cache[node.name]

    return factory


def _answers(node: NodeRecord, factory: RemoteFactory) -> bool:
    """True once the host runs a command; a changed host key or a refused login is raised, not waited out."""
    try:
        return factory(node).run("true", sudo=False, timeout=CONNECT_TIMEOUT).ok
    except (HostKeyChanged, LoginRefused):
        raise
    except RemoteError:
        return False


def wait_for_ssh(inventory: Inventory, factory: RemoteFactory, *, progress, timeout: float = 300,
                 interval: float = 3, allowed: list[str] | None = None) -> None:
    """Every node answers on SSH, all waited for in parallel; a RemoteError naming those that never did.

    A host that refuses the login or shows another host key ends the whole wait at once (the
    other nodes' waits stop at their next try): waiting would not change either answer.
    allowed: the sources the security group lets SSH in from, for the timeout's line."""
    started = time.monotonic()
    fatal = threading.Event()

    def wait(node: NodeRecord) -> bool:
        try:
            Retrying(retry=retry_if_result(lambda ok: not ok), stop=stop_after_delay(timeout) | stop_when_event_set(
                fatal), wait=wait_fixed(interval))(_answers, node, factory)
        except RetryError:
            return False
        except RemoteError:
            fatal.set()
            raise
        progress(f"  {node.name} answers on SSH ({time.monotonic() - started:.0f} s)")
        return True

    with ThreadPoolExecutor(max_workers=len(inventory.nodes) or 1) as pool:
        answered = list(pool.map(wait, inventory.nodes))
    silent = [f"{n.name} ({n.ssh_host})" for n, ok in zip(inventory.nodes, answered) if not ok]
    if silent:
        raise RemoteError(f"{', '.join(silent)} did not answer on SSH within {timeout:.0f} s; "
                          + _allowed_hint(allowed))


def _allowed_hint(allowed: list[str] | None) -> str:
    """What the security group lets in and how to change it: the usual cause of a silent host."""
    if not allowed:
        return "check the security group's SSH rule (ssh.allow_from) and run `lab up` again"
    return (f"the security group allows SSH only from {', '.join(allowed)}: if you reach AWS from another address "
            f"(a VPN, a proxy, another network), set `ssh: {{allow_from: [YOUR.PUBLIC.ADDRESS/32]}}` in the config "
            f"and run `lab up` again")
