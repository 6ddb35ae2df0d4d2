"""The twin's figures in one run: the install floor, then a whole lab on the twin.

Each round times, as a user would see them (wall time of the `lab` command, a subprocess):

    floor      one plain apt-get of every package of the lab in one fresh container
    lab floor  every host of the lab its own packages, one plain apt-get each, all at once
    lab up, lab install (fresh hosts), lab verify, lab install again (nothing to change), lab down
    boot to SSH  within lab up: from its "launching" line to the last host's "answers on SSH"
                 (RunInstances, the bodies' boot with cloud-init, host keys from the consoles, SSH)

and reports install / floor (target <= 1.3) and the second install (target <= 10 s); it
exits 1 when a target is missed in the median of the rounds. install / lab floor is
shown beside it: what configuring OpenStack the guide's way costs on top of the packages
this lab's hosts need on this machine. The floors go first in each round, so everything
sees the same warm apt download cache.

    sudo .venv/bin/python bench/sim_lab_bench.py [--rounds 3] [--config configs/lab.yaml] [--boot-only]

--boot-only runs lab up and lab down alone (no floor, no install): the boot figures, quick
enough to pair against an older tree (copy this file into its bench/ and run both in turns).

Needs root and no lab running on the twin; each round's lab lives in a temporary LAB_HOME
and is taken down whatever happens.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.sim_install_floor import lab_hosts, measure_floor, measure_lab_floor  # noqa: E402
from lab.config import load_config  # noqa: E402
from twin import netns  # noqa: E402
from twin.client import check_host  # noqa: E402

MAX_RATIO = 1.3
MAX_SECOND_INSTALL_S = 10.0
COMMANDS = (("up",), ("install",), ("verify",), ("install",), ("down",))
LABELS = ("lab up", "lab install", "lab verify", "lab install again", "lab down")
BOOT_LABELS = ("lab up", "lab down")

console = Console(highlight=False)


class LabFailed(RuntimeError):
    pass


def _lab(home: Path, config: Path, *args: str) -> tuple[float, str, list[tuple[float, str]]]:
    """Wall time, stdout, and each stdout line with the second it appeared (from the start)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # never a real AWS profile
    env["LAB_HOME"] = str(home)
    started = time.monotonic()
    lines: list[tuple[float, str]] = []
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "lab", "--config", str(config), "--target", "sim", *args],
                                cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=err)
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
        code = proc.wait(timeout=3600)
        seconds = time.monotonic() - started
        err.seek(0)
        stderr = err.read()
    out = "\n".join(line for _, line in lines)
    if code != 0:
        raise LabFailed(f"lab {' '.join(args)} failed (exit {code}):\n{out[-3000:]}{stderr[-3000:]}")
    return seconds, out, lines


def boot_to_ssh(lines: list[tuple[float, str]]) -> float | None:
    """Seconds from `lab up`'s "launching" line to its last "answers on SSH" line; None without both."""
    launched = next((t for t, line in lines if line.startswith("launching ")), None)
    answered = [t for t, line in lines if re.search(r"\banswers on SSH\b", line)]
    if launched is None or not answered:
        return None
    return max(answered) - launched


def lab_round(config: Path, boot_only: bool = False) -> dict[str, float]:
    """One lab from nothing to nothing; the wall time of every command, by label (boot_only:
    lab up and lab down alone)."""
    times: dict[str, float] = {}
    steps = [(label, args) for label, args in zip(LABELS, COMMANDS) if not boot_only or label in BOOT_LABELS]
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        home = Path(tmp) / ".lab"
        try:
            for label, args in steps:
                _timed(home, config, label, args, times)
        except LabFailed as exc:
            raise LabFailed(f"{exc}\n(the round's logs are kept in {keep_logs(home)})") from exc
        finally:
            if "lab down" not in times:
                _lab(home, config, "down")
    return times


def _timed(home: Path, config: Path, label: str, args: tuple[str, ...], times: dict[str, float]) -> None:
    """One lab command of a round, its time in times; LabFailed when it did not do its job."""
    seconds, out, lines = _lab(home, config, *args)
    times[label] = seconds
    console.print(f"  {label}: {seconds:.1f} s")
    if label == "lab up":
        boot = boot_to_ssh(lines)
        if boot is None:
            raise LabFailed(f"lab up did not say when it launched and when SSH answered:\n{out}")
        times["boot to SSH"] = boot
        console.print(f"  boot to SSH: {boot:.1f} s")
    if label == "lab verify" and not re.search(r"\b\d+ passed, 0 failed", out):
        raise LabFailed(f"lab verify did not pass:\n{out}")
    if label == "lab install again" and not re.search(r"\b0 changed\b", out):
        raise LabFailed(f"the second lab install changed something:\n{out}")


def keep_logs(home: Path) -> Path:
    """A failed round's logs, copied out of its temporary LAB_HOME before it goes (the logs
    only: no key, no secret), so that a failure seen once in a long bench can be read."""
    kept = Path(tempfile.mkdtemp(prefix="lab-bench-failed-"))
    for logs in home.glob("*/logs"):
        shutil.copytree(logs, kept / logs.parent.name, dirs_exist_ok=True)
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="floor + lab rounds; figures are their medians")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "lab.yaml")
    parser.add_argument("--boot-only", action="store_true", help="lab up and lab down alone: the boot figures")
    args = parser.parse_args()
    check_host()
    if netns.link_exists(netns.BRIDGE):
        console.print("a lab is running on the twin: run `lab down` first", style="red")
        return 2
    spec = load_config(args.config)  # its auth: and hosts decide the floors' packages and containers
    rounds: list[dict[str, float]] = []
    if args.boot_only:
        for number in range(1, args.rounds + 1):
            console.print(f"round {number}/{args.rounds}: lab up, lab down")
            rounds.append(lab_round(args.config.resolve(), boot_only=True))
        return report_boot(rounds)
    for number in range(1, args.rounds + 1):
        console.print(f"round {number}/{args.rounds}: floor")
        count, update, install = measure_floor(["controller", "object"], auth=spec.auth)
        console.print(f"  floor: {update + install:.1f} s ({count} packages: update {update:.1f} s, install {install:.1f} s)")
        lab_floor = measure_lab_floor(hosts=lab_hosts(spec), auth=spec.auth)  # the config's hosts and packages
        console.print(f"  lab floor: {lab_floor:.1f} s")
        console.print(f"round {number}/{args.rounds}: lab")
        times = lab_round(args.config.resolve())
        times["floor"] = update + install
        times["lab floor"] = lab_floor
        times["ratio"] = times["lab install"] / times["floor"]
        times["lab ratio"] = times["lab install"] / lab_floor
        rounds.append(times)
    return report(rounds)


def _table(rounds: list[dict[str, float]], labels: tuple[str, ...]) -> None:
    """Median and every round of each figure that every round has."""
    table = Table(title=f"the lab on the twin, {len(rounds)} round(s) (median; each round in brackets)")
    table.add_column("figure")
    table.add_column("median", justify="right")
    table.add_column("rounds", justify="right")
    names = {"ratio": "install / floor", "lab ratio": "install / lab floor"}
    for label in labels:
        if not all(label in r for r in rounds):
            continue
        values = [r[label] for r in rounds]
        unit = "" if label in names else " s"
        table.add_row(names.get(label, label), f"{statistics.median(values):.2f}{unit}",
                      ", ".join(f"{v:.2f}" for v in values))
    console.print(table)


def report_boot(rounds: list[dict[str, float]]) -> int:
    """--boot-only: the figures alone (the 1.5x bound is judged against an older tree's run)."""
    _table(rounds, ("lab up", "boot to SSH", "lab down"))
    return 0


def report(rounds: list[dict[str, float]]) -> int:
    _table(rounds, (*LABELS, "boot to SSH", "floor", "lab floor", "ratio", "lab ratio"))
    ratio = statistics.median(r["ratio"] for r in rounds)
    again = statistics.median(r["lab install again"] for r in rounds)
    missed = []
    if ratio > MAX_RATIO:
        missed.append(f"install / floor {ratio:.2f} > {MAX_RATIO}")
    if again > MAX_SECOND_INSTALL_S:
        missed.append(f"second install {again:.1f} s > {MAX_SECOND_INSTALL_S:.0f} s")
    console.print("targets missed: " + "; ".join(missed) if missed else
                  f"targets met: install / floor {ratio:.2f} <= {MAX_RATIO}, "
                  f"second install {again:.1f} s <= {MAX_SECOND_INSTALL_S:.0f} s")
    return 1 if missed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LabFailed as exc:
        console.print(str(exc), style="red", markup=False)
        sys.exit(1)
