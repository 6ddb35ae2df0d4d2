"""Provisioning benchmark: EC2 API calls and wall time of `lab up --no-ssh` and `lab down`.

moto answers at once, which hides what a cloud round trip costs, so every EC2 call here
first sleeps a simulated delay (200 ms by default, a botocore event hook that exists only
in this script). Concurrent calls sleep concurrently, as real round trips overlap. The
target is Flintrock's shape: wall time nearly flat in the number of nodes, and a node that
costs at most 2 calls whatever its volume count (its volumes come with its RunInstances).

    .venv/bin/python bench/provision_bench.py [--quick] [--delay-ms 200] [--verbose]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

SIZES = (3, 10, 50)
QUICK_SIZES = (3, 10)
VOLUMES_PER_OBJECT_NODE = 2
MAX_RATIO = 2.0
CALLS_PER_EXTRA_NODE = 2  # whatever the node's volume count
# moto 5.2 ships this Canonical image (xenial); moto has no 18.04 one, so the lab pins it.
MOTO_UBUNTU_AMI = "ami-785db401"
REGION = "ap-northeast-2"
CALLER = "198.51.100.7/32"
# Every poll delay of up and down is set to this (see _pace_waits).
POLL_SECONDS = 1.0

console = Console(highlight=False)


class Meter:
    """Counts every EC2 call by operation and delays it, through a botocore before-call hook."""

    def __init__(self, delay_s: float):
        self.delay_s = delay_s
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def attach(self, client) -> None:
        client.meta.events.register("before-call.ec2", self._before_call)

    def _before_call(self, model, **_):
        with self._lock:
            self.calls[model.name] += 1
        time.sleep(self.delay_s)
        return None  # let the call go on to moto

    def take(self) -> Counter[str]:
        with self._lock:
            calls, self.calls = self.calls, Counter()
        return calls


@dataclass
class Run:
    nodes: int
    up_s: float = 0.0
    down_s: float = 0.0
    up_calls: Counter[str] = field(default_factory=Counter)
    down_calls: Counter[str] = field(default_factory=Counter)


def lab_yaml(name: str, nodes: int) -> str:
    """1 controller + nodes-1 object nodes with two Swift volumes each."""
    lines = [f"name: {name}", f"region: {REGION}", f"ami: {MOTO_UBUNTU_AMI}",
             "ssh: {user: ubuntu, allow_from: [auto]}", "nodes:",
             "  controller: {role: controller, type: t3.large}"]
    lines += [f"  object{i}: {{role: object, type: t3.medium, volumes: {{sdb: 10, sdc: 10}}}}"
              for i in range(1, nodes)]
    return "\n".join(lines) + "\n"


def _isolate_from_aws(home: Path) -> None:
    """Never reach real AWS: fake credentials, no profile or endpoint from the environment."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_EC2"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION,
                      AWS_CONFIG_FILE=str(home / "no-aws-config"),
                      AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
                      LAB_HOME=str(home / ".lab"))


def paced_waits() -> list[tuple[object, str]]:
    """Every poll delay of `up` and `down`, as (module, constant name): where they really live."""
    from lab import instances, teardown, volumes

    return [(instances, "POLL_SECONDS"), (volumes, "POLL_SECONDS"),
            (teardown, "TERMINATE_POLL_SECONDS"), (teardown, "GONE_POLL_SECONDS")]


def _pace_waits() -> None:
    """moto makes instances running/terminated at once, so waits end on their first poll;
    keep the poll delays short so a miss costs what it would cost a fast real poll.

    A constant that moved or was renamed fails here: setting a name nothing reads would
    let the benchmark measure the production delays while claiming 1 s.
    """
    for module, name in paced_waits():
        if not hasattr(module, name):
            raise SystemExit(f"bench: {module.__name__}.{name} does not exist; update paced_waits()")
        setattr(module, name, POLL_SECONDS)


def measure(nodes: int, delay_s: float) -> Run:
    from moto import mock_aws

    from lab import provision, teardown
    from lab.config import parse_config
    from lab.target import AwsTarget
    from labcore.paths import LabPaths

    meter = Meter(delay_s)

    class MeteredTarget(AwsTarget):
        def ec2_client(self, region: str):
            client = super().ec2_client(region)
            meter.attach(client)
            return client

    spec = parse_config(lab_yaml(f"bench{nodes}", nodes), f"<bench {nodes} nodes>")
    target = MeteredTarget()
    run = Run(nodes)
    with mock_aws():
        paths = LabPaths.for_lab(spec.name).ensure()
        start = time.perf_counter()
        provision.up(spec, target, paths, resolve_caller=lambda cidr: CALLER, progress=lambda line: None)
        run.up_s, run.up_calls = time.perf_counter() - start, meter.take()
        start = time.perf_counter()
        teardown.down(spec.name, spec.region, target, progress=lambda line: None)
        run.down_s, run.down_calls = time.perf_counter() - start, meter.take()
    return run


@dataclass(frozen=True)
class Verdict:
    name: str
    value: float
    limit: float

    @property
    def ok(self) -> bool:
        return self.value <= self.limit


def verdicts(runs: list[Run]) -> list[Verdict]:
    small, large = runs[0], runs[-1]
    extra = large.nodes - small.nodes
    per_node_limit = CALLS_PER_EXTRA_NODE
    tag = f"({large.nodes})/({small.nodes})"
    return [
        Verdict(f"up{tag} wall time", large.up_s / small.up_s, MAX_RATIO),
        Verdict(f"down{tag} wall time", large.down_s / small.down_s, MAX_RATIO),
        Verdict("up API calls per extra node", (_total(large.up_calls) - _total(small.up_calls)) / extra,
                per_node_limit),
        Verdict("down API calls per extra node", (_total(large.down_calls) - _total(small.down_calls)) / extra,
                per_node_limit),
    ]


def _total(calls: Counter[str]) -> int:
    return sum(calls.values())


def render(runs: list[Run], results: list[Verdict], delay_ms: float, verbose: bool) -> None:
    table = Table(title=f"lab up --no-ssh / lab down on moto, {delay_ms:.0f} ms per EC2 call")
    for column in ("nodes", "volumes", "up calls", "up s", "down calls", "down s"):
        table.add_column(column, justify="right")
    for run in runs:
        table.add_row(str(run.nodes), str((run.nodes - 1) * VOLUMES_PER_OBJECT_NODE),
                      str(_total(run.up_calls)), f"{run.up_s:.2f}",
                      str(_total(run.down_calls)), f"{run.down_s:.2f}")
    console.print(table)
    targets = Table(title="targets")
    for column in ("measure", "value", "target", "met"):
        targets.add_column(column)
    for v in results:
        targets.add_row(v.name, f"{v.value:.2f}", f"<= {v.limit:g}", "yes" if v.ok else "NO")
    console.print(targets)
    if verbose:
        for run in runs:
            breakdown = Table(title=f"{run.nodes} nodes: calls per operation")
            for column in ("operation", "up", "down"):
                breakdown.add_column(column, justify="right" if column != "operation" else "left")
            for op in sorted(set(run.up_calls) | set(run.down_calls),
                             key=lambda o: -(run.up_calls[o] + run.down_calls[o])):
                breakdown.add_row(op, str(run.up_calls[op]), str(run.down_calls[op]))
            console.print(breakdown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {' and '.join(map(str, QUICK_SIZES))} nodes")
    parser.add_argument("--delay-ms", type=float, default=200.0, help="simulated round trip per EC2 call")
    parser.add_argument("--verbose", action="store_true", help="EC2 calls per operation for every size")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else SIZES
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as home:
        _isolate_from_aws(Path(home))
        _pace_waits()
        # Unmeasured first run: moto's and botocore's imports and model loading are not the lab's cost.
        measure(sizes[0], 0.0)
        runs = []
        for nodes in sizes:
            console.print(f"measuring {nodes} nodes ...", markup=False)
            runs.append(measure(nodes, args.delay_ms / 1000))
    results = verdicts(runs)
    render(runs, results, args.delay_ms, args.verbose)
    missed = [v.name for v in results if not v.ok]
    if missed:
        console.print(f"target missed: {', '.join(missed)} (run with --verbose for the calls per operation)",
                      markup=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
