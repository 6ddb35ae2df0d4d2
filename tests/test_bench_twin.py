"""The twin's benchmark judges its figures by the issue's targets: install / floor <= 1.3, a second install <= 10 s."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench_modules import load


@pytest.fixture
def bench(monkeypatch):
    return load("sim_lab_bench", monkeypatch)


def round_of(install: float, floor: float, again: float = 4.0, lab_floor: float = 90.0) -> dict[str, float]:
    return {"lab up": 12.0, "lab install": install, "lab verify": 18.0, "lab install again": again,
            "lab down": 11.0, "floor": floor, "ratio": install / floor, "lab floor": lab_floor,
            "lab ratio": install / lab_floor}


def test_targets_met_on_the_median_of_the_rounds(bench, capsys):
    # One slow round out of three does not decide; the median does.
    assert bench.report([round_of(100, 84), round_of(150, 84), round_of(105, 84)]) == 0
    out = capsys.readouterr().out
    assert "targets met: install / floor 1.25 <= 1.3" in out
    assert re.search(r"install / lab floor\W+1\.17\b", out)  # 105 / 90, shown beside the target


def test_a_ratio_over_the_target_fails_the_benchmark(bench, capsys):
    assert bench.report([round_of(129, 84)]) == 1
    assert "install / floor 1.54 > 1.3" in capsys.readouterr().out


def test_a_slow_second_install_fails_the_benchmark(bench, capsys):
    assert bench.report([round_of(100, 84, again=12.5)]) == 1
    assert "second install 12.5 s > 10 s" in capsys.readouterr().out


def test_a_failed_round_keeps_its_logs_and_takes_its_lab_down(bench, monkeypatch, tmp_path):
    """The round's LAB_HOME is temporary: its host logs are copied out first (never a key or a
    secret), and the lab is taken down whatever failed."""
    ran = []

    def fake_lab(home, config, *args):
        ran.append(args)
        lab = home / "rocky-lab"
        (lab / "logs").mkdir(parents=True, exist_ok=True)
        (lab / "logs" / "controller.log").write_text(f"ran {args}\n")
        (lab / "secrets.yaml").write_text("admin_pass: x\n")
        if args == ("install",):
            raise bench.LabFailed("lab install failed (exit 1)")
        return 1.0, "launching 3 hosts\ncontroller answers on SSH", [(0.0, "launching "), (1.0, "x answers on SSH")]

    monkeypatch.setattr(bench, "_lab", fake_lab)
    monkeypatch.setattr(bench.tempfile, "tempdir", str(tmp_path))
    with pytest.raises(bench.LabFailed) as failed:
        bench.lab_round(tmp_path / "lab.yaml")
    kept = Path(re.search(r"logs are kept in (\S+)\)", str(failed.value))[1])
    assert (kept / "rocky-lab" / "controller.log").read_text() == "ran ('install',)\n"
    assert not list(kept.rglob("secrets*"))
    assert ran == [("up",), ("install",), ("down",)]
