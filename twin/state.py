"""The twin's state folder (.lab/sim): which file says what, read with validation.

    endpoint      http://127.0.0.1:PORT, the daemon's EC2 API (written last at start: "ready")
    daemon.pid    the daemon's process id
    regions       the regions labs asked for, one a line (clients append; a touch = a client came by)
    body-layer    host or null: the body layer the daemon runs, so that clients open the same
    daemon.log    the daemon's log;  start.lock: one client at a time decides to start a daemon
    bodies/ volumes/ null-*.json      the body layers' own (twin/bodies.py, twin/nullbodies.py)

A damaged file (garbage, cut short, edited by hand) is a TwinStateError that names it and
says `lab down` cleans up, never a traceback. The clean-up paths read leniently instead
(`*_or_none`), so `lab down` still works when these files do not.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

from twin import procs
from twin.errors import TwinStateError

log = logging.getLogger(__name__)

LAYER_KINDS = ("host", "null")
_ENDPOINT = re.compile(r"http://127\.0\.0\.1:[0-9]{1,5}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
DAEMON_MODULE = b"twin.daemon"


def is_daemon(pid: int) -> bool:
    """Whether pid is a live twin daemon."""
    return procs.runs(pid, DAEMON_MODULE)


@dataclasses.dataclass(frozen=True)
class StateFiles:
    root: Path

    @property
    def endpoint(self) -> Path:
        return self.root / "endpoint"

    @property
    def pid(self) -> Path:
        return self.root / "daemon.pid"

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def regions(self) -> Path:
        return self.root / "regions"

    @property
    def body_layer(self) -> Path:
        return self.root / "body-layer"

    @property
    def lock(self) -> Path:
        return self.root / "start.lock"

    # ------------------------------------------------------------ validated reads
    def _text(self, path: Path) -> str | None:
        try:
            return path.read_text()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise TwinStateError(path, f"unreadable: {exc}") from exc

    def read_endpoint(self) -> str | None:
        text = self._text(self.endpoint)
        if text is None:
            return None
        if not _ENDPOINT.fullmatch(text.strip()):
            raise TwinStateError(self.endpoint, f"expected http://127.0.0.1:PORT, found {text.strip()[:40]!r}")
        return text.strip()

    def read_pid(self) -> int | None:
        text = self._text(self.pid)
        if text is None:
            return None
        if not text.strip().isdigit() or int(text.strip()) < 2:
            raise TwinStateError(self.pid, f"expected a process id, found {text.strip()[:40]!r}")
        return int(text.strip())

    def read_regions(self) -> list[str]:
        text = self._text(self.regions) or ""
        found = {line.strip() for line in text.splitlines() if line.strip()}
        bad = sorted(r for r in found if not _REGION.fullmatch(r))
        if bad:
            raise TwinStateError(self.regions, f"expected one AWS region a line (ap-northeast-2), found {bad[0][:40]!r}")
        return sorted(found)

    def read_body_layer(self) -> str:
        """The daemon's body layer; host when no daemon said otherwise."""
        text = self._text(self.body_layer)
        if text is None:
            return "host"
        if text.strip() not in LAYER_KINDS:
            raise TwinStateError(self.body_layer, f"expected one of {', '.join(LAYER_KINDS)}, found {text.strip()[:40]!r}")
        return text.strip()

    # ------------------------------------------------------------ lenient reads, for cleaning up
    def daemon_pids(self) -> list[int]:
        """Every live daemon of this folder: the pid file's, else any found by its command line
        (a damaged or lost pid file must not leave a daemon running after `lab down`)."""
        try:
            pid = self.read_pid()
        except TwinStateError as exc:
            log.warning("%s", exc)
            pid = None
        if pid is not None and is_daemon(pid):
            return [pid]
        return self._daemons_by_command_line()

    def _daemons_by_command_line(self) -> list[int]:
        return sorted(pid for pid, args in _daemon_command_lines((DAEMON_MODULE,))
                      if _option(args, "--state-dir") == str(self.root))

    def regions_or_none(self) -> list[str] | None:
        try:
            return self.read_regions()
        except TwinStateError as exc:
            log.warning("%s", exc)
            return None

    # ------------------------------------------------------------ writes
    def regions_stamp(self) -> int:
        return self.regions.stat().st_mtime_ns if self.regions.exists() else 0

    def add_region(self, region: str) -> None:
        """List region (once) and touch the file: a client came by, so do not stop just now."""
        if region not in self.read_regions():
            with self.regions.open("a") as f:
                f.write(region + "\n")
        os.utime(self.regions)

    def remove_runtime_files(self) -> list[str]:
        gone = []
        for path in (self.endpoint, self.pid, self.regions, self.body_layer):
            if path.exists():
                path.unlink()
                gone.append(str(path))
        return gone


# A checkout from before twin/ was its own package ran its daemon as lab.sim.daemon.
ANY_DAEMON_MODULE = (DAEMON_MODULE, b"lab.sim.daemon")


def host_twins_elsewhere(root: Path) -> list[tuple[int, str]]:
    """Live daemons with real bodies whose state folder is not root: (pid, state folder).
    Their bodies share this machine's one lab network (its bridge, its addresses), so
    a second such twin would hand out the same addresses as the first."""
    found = [(pid, _option(args, "--state-dir"), _option(args, "--bodies"))
             for pid, args in _daemon_command_lines(ANY_DAEMON_MODULE)]
    return sorted((pid, folder) for pid, folder, bodies in found
                  if folder is not None and folder != str(root) and bodies in (None, "host"))


def _daemon_command_lines(modules: tuple[bytes, ...]):
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        args = procs.command_line(int(entry.name))
        if any(module in args for module in modules):  # python -m MODULE ...
            yield int(entry.name), [os.fsdecode(a) for a in args]


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None
