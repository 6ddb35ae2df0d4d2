"""No config file breaks `lab`: not text, huge, deep, an alias bomb, values YAML cannot build.

Each is what a user would see from `lab up`: exit 2, one short line naming the file, no EC2
client built, at once. The alias bomb runs in a subprocess with a timeout, so that a
regression fails this test instead of hanging the suite.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import test_config
from test_config import GOOD, run_lab

from labcore import safeyaml

ec2_calls = test_config.ec2_calls  # the fixture: every EC2 client built, a bad config builds none

ROOT = Path(__file__).resolve().parent.parent
# Well over pydantic's echo of the input, well under the size bound: what a bad error line would print whole.
BIG = "x" * 900_000
# Nine times nine ... nine "lol"s: 9**9 (387 million) values once expanded, in a few lines; the node type
# is the whole bomb, so an error line that quoted it whole would never be printed.
ALIAS_BOMB = "name: rocky-lab\nregion: ap-northeast-2\ntags:\n  l0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)) + \
    "nodes:\n  controller: {role: controller, type: *a8}\n"


def assert_one_short_line(code: int, err: str, *words: str, limit: int = 400) -> None:
    assert code == 2, err
    assert len(err.splitlines()) == 1 and len(err) <= limit, err[:500]
    assert "lab.yaml" in err and all(word in err for word in words), err


@pytest.mark.parametrize("data, words", [
    (GOOD.replace("rocky-lab", "r\xf6cky-lab").encode("latin-1"), ("not UTF-8 text", "byte 0xf6")),
    (GOOD.encode("utf-16"), ("not UTF-8 text", "byte 0xff")),
    (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8, ("not UTF-8 text",)),
    (GOOD.encode() + b"colour: \x00\n", ("invalid YAML", "control characters")),
], ids=["latin-1", "utf-16", "binary", "nul byte"])
def test_a_config_that_is_not_utf8_text_is_one_line(tmp_path, capsys, ec2_calls, data, words):
    assert_one_short_line(*run_lab(tmp_path, capsys, data), *words)
    assert ec2_calls == []


def test_a_10mb_config_is_refused_by_size_in_one_short_line(tmp_path, capsys, ec2_calls):
    started = time.monotonic()
    code, err = run_lab(tmp_path, capsys, GOOD + "tags: {note: " + "x" * 10_000_000 + "}\n")
    assert_one_short_line(code, err, "too large", f"more than {safeyaml.MAX_BYTES} bytes")
    assert time.monotonic() - started < 2 and ec2_calls == []


@pytest.mark.parametrize("config, key", [
    (GOOD.replace("rocky-lab", BIG), "name"),
    (GOOD.replace("ap-northeast-2", BIG), "region"),
    (GOOD.replace("t3.large", BIG), "nodes.controller.type"),
    (GOOD.replace("sdb: 10", f"sdb: {BIG}"), "nodes.object1.volumes"),
    (GOOD + f"  ? {BIG}\n  : {{role: object, type: t3.medium}}\n", "nodes"),  # YAML's explicit key: any length
    (GOOD + f"tags: {{note: {BIG}}}\n", "tags"),
    (GOOD + f"tags:\n  ? {BIG}\n  : note\n", "tags"),
    (GOOD + f"ssh: {{allow_from: [{BIG}]}}\n", "ssh.allow_from"),
    (GOOD + f"expires_after: {BIG}\n", "expires_after"),
    (GOOD + f"? {BIG}\n: 1\n", "xxxxxxxxxx"),
    (GOOD + f"root_volume_gb: [{', '.join(['1'] * 90_000)}]\n", "root_volume_gb"),
    (GOOD + "root_volume_gb: " + "9" * 4000 + "\n", "root_volume_gb"),
    (GOOD + "root_volume_gb: 0x" + "f" * 5000 + "\n", "line 6"),
], ids=["name", "region", "node type", "volume size", "node name", "tag value", "tag key", "allow_from",
        "expires_after", "unknown key", "90,000-item list", "4,000-digit int", "20,000-bit int"])
def test_a_huge_value_gives_a_short_line(tmp_path, capsys, ec2_calls, config, key):
    """pydantic keeps the input in its errors: whatever it is, the line quotes at most ~80 characters of it."""
    started = time.monotonic()
    code, err = run_lab(tmp_path, capsys, config)
    assert_one_short_line(code, err, key)
    assert err.count("x") < 100 and err.count("9") < 100 and err.count("f") < 100
    assert time.monotonic() - started < 5 and ec2_calls == []


@pytest.mark.parametrize("config", ["[" * 50_000 + "]" * 50_000, "{a: " * 50_000 + "}" * 50_000,
                                    GOOD + "tags: " + "[" * 40 + "]" * 40 + "\n"],
                         ids=["50,000 lists", "50,000 mappings", "40 levels in a key"])
def test_a_config_nested_deep_is_one_line_at_once(tmp_path, capsys, ec2_calls, config):
    started = time.monotonic()
    code, err = run_lab(tmp_path, capsys, config)
    assert_one_short_line(code, err, f"nested more than {safeyaml.MAX_DEPTH} levels deep")
    assert time.monotonic() - started < 2 and ec2_calls == []


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    """9**9 values from ten lines: refused before anything expands it (PyYAML, pydantic, the error line)."""
    config = tmp_path / "lab.yaml"
    config.write_text(ALIAS_BOMB)
    probe = ("import sys\nfrom lab import cli\nfrom lab.target import Target\ncalls = []\n"
             "Target.ec2_client = lambda self, region: calls.append(region)\n"
             "code = cli.main(sys.argv[1:])\nprint(f'ec2 clients: {len(calls)}')\nsys.exit(code)\n")
    env = {"PATH": "/usr/bin:/bin", "LAB_HOME": str(tmp_path / ".lab"), "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", probe, "--target", "aws", "--config", str(config), "up"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=30)
    elapsed = time.monotonic() - started
    err = done.stderr.strip()
    assert_one_short_line(done.returncode, err, "expands to more than", "aliases included")
    assert done.stdout.strip() == "ec2 clients: 0"
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_an_alias_expanding_inside_the_bounds_is_quoted_short(tmp_path, capsys, ec2_calls):
    """40,000 values through one alias: pydantic's error holds them all, the line does not."""
    aliases = "x: &big [" + ", ".join(["lol"] * 200) + "]\ny: &bigger [" + ", ".join(["*big"] * 200) + "]\n"
    code, err = run_lab(tmp_path, capsys, aliases + GOOD.replace("type: t3.large", "type: *bigger"))
    assert_one_short_line(code, err, "nodes.controller.type")


@pytest.mark.parametrize("config, words", [
    (GOOD + "loop: &loop [*loop]\n", ("line 6", "contains itself")),
    (GOOD + "tags: {[a, b]: c}\n", ("line 6", "not a list or a mapping")),
    (GOOD + "tags: {made: 2001-13-45}\n", ("line 6", "cannot read the value '2001-13-45'", "month")),
    (GOOD + "tags: !!python/object/apply:os.system [id]\n", ("line 6", "could not determine a constructor")),
    (GOOD + "tags: *nowhere\n", ("line 6", "undefined alias")),
    (GOOD + "---\nname: other\n", ("line 6", "a single document")),
    (GOOD + "name: again\n", ("line 6", "duplicate key 'name'")),
    ("", ("expected a mapping",)),
], ids=["recursive alias", "list as a key", "impossible date", "python tag", "undefined alias", "two documents",
        "duplicate top-level key", "empty file"])
def test_yaml_that_cannot_be_built_is_one_line(tmp_path, capsys, ec2_calls, config, words):
    assert_one_short_line(*run_lab(tmp_path, capsys, config), *words)
    assert ec2_calls == []


def test_a_folder_as_config_is_one_line(tmp_path, capsys, ec2_calls):
    from lab import cli

    assert cli.main(["--target", "aws", "--config", str(tmp_path), "up"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path) in err and "cannot read" in err and ec2_calls == []
