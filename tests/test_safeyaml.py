"""labcore.safeyaml: the lab's files load as YAML does, and no file makes it hang, crash or print a page.

What the loader promises its callers (config, secrets.yaml, inventory.yaml): the document,
or a YamlError with `.where` (a line, or "") and `.expected` (one short sentence). Inputs
that could run away (an alias bomb, 50,000 levels) run in a subprocess with a timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labcore import safeyaml
from labcore.safeyaml import YamlError, load, quote

ROOT = Path(__file__).resolve().parent.parent
BOMB = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))


def refused(text, **bounds) -> YamlError:
    with pytest.raises(YamlError) as raised:
        load(text, **bounds)
    return raised.value


def test_a_lab_file_loads_as_yaml_says():
    text = ("base: &base {role: object, type: t3.medium}\n"
            "nodes:\n  object1: {<<: *base, volumes: {sdb: 10}}\n  object2: {<<: *base, type: t3.large}\n"
            "list: [1, 2.5, true, null, '0x10', 0x10]\nwhen: 2024-01-02\n")
    data = load(text.encode())
    assert data["nodes"]["object1"] == {"role": "object", "type": "t3.medium", "volumes": {"sdb": 10}}
    assert data["nodes"]["object2"] == {"role": "object", "type": "t3.large"}  # a merge key may be overridden
    assert data["list"] == [1, 2.5, True, None, "0x10", 16] and str(data["when"]) == "2024-01-02"
    assert load("") is None and load("\ufeffa: 1\n") == {"a": 1}


def test_a_duplicate_key_is_refused_with_its_line():
    error = refused("a: 1\nb:\n  c: 1\n  c: 2\n")
    assert (error.where, error.expected) == ("line 4", "duplicate key 'c'")
    assert str(error) == "line 4: duplicate key 'c'"


@pytest.mark.parametrize("data, expected", [
    (b"name: r\xf6cky\n", "not UTF-8 text (byte 0xf6 at offset 7); save it as UTF-8"),
    ("a: \udc80\n", "not UTF-8 text (byte 0xed at offset 3); save it as UTF-8"),
    ("a: \ud800\n", "not UTF-8 text (byte 0xed at offset 3); save it as UTF-8"),  # noqa: PT014 - another surrogate
])
def test_only_utf8_text_is_read(data, expected):
    error = refused(data)
    assert (error.where, error.expected) == ("", expected)


def test_each_bound_holds_at_its_edge():
    assert load("[" * 4 + "]" * 4, max_depth=4) == [[[[]]]]
    assert refused("[" * 5 + "]" * 5, max_depth=4).expected == "nested more than 4 levels deep"
    assert load("[a, b, c]", max_nodes=4) == ["a", "b", "c"]  # the list and its three items
    assert refused("[a, b, c, d]", max_nodes=4).expected == "expands to more than 4 values (aliases included)"
    # the mapping, keys x and y, the list and its items, and the list again through the alias
    assert load("x: &x [a, b]\ny: *x\n", max_nodes=9) == {"x": ["a", "b"], "y": ["a", "b"]}
    assert refused("x: &x [a, b]\ny: *x\nz: *x\n", max_nodes=9).where == "line 3"
    assert load(b"a: 12", max_bytes=5) == {"a": 12}
    assert refused(b"a: 123", max_bytes=5).expected == "too large: more than 5 bytes"


@pytest.mark.parametrize("text, where, words", [
    ("a: &a [*a]\n", "line 1", "contains itself"),
    ("a: &a {b: {c: *a}}\n", "line 1", "contains itself"),
    ("{[1]: 2}\n", "line 1", "not a list or a mapping"),
    ("a: 2001-13-45\n", "line 1", "month must be in 1..12"),
    ("a: 1\nb: " + "9" * 5000 + "\n", "line 2", "too large (at most 4300 digits)"),
    ("a: 0x" + "f" * 5000 + "\n", "line 1", "too large (at most 4300 digits)"),
    ("a: !!int abc\n", "line 1", "cannot read the value 'abc': invalid literal for int()"),
    ("a: !!float abc\n", "line 1", "cannot read the value 'abc'"),
    ("a: !!python/name:os.system\n", "line 1", "could not determine a constructor"),
    ("a: [1\n", "line 2", "invalid YAML"),
    ("a:\n\t- 1\n", "line 2", "cannot start any token"),
    ("a: 1\n---\nb: 2\n", "line 2", "a single document"),
    ("a: b\x00c\n", "", "control characters are not allowed"),
])
def test_what_yaml_cannot_build_is_one_short_sentence(text, where, words):
    error = refused(text)
    assert error.where == where and words in error.expected
    assert "\n" not in error.expected and len(error.expected) <= 200


def test_deep_nesting_is_refused_at_once():
    for text in ("[" * 50_000 + "]" * 50_000, "{a: " * 50_000 + "}" * 50_000, "- " * 50_000 + "x"):
        started = time.monotonic()
        error = refused(text)
        assert error.expected == f"nested more than {safeyaml.MAX_DEPTH} levels deep"
        assert time.monotonic() - started < 1


PROBE = """
import json, sys, time
if sys.argv[1] == "pure":
    sys.modules["yaml._yaml"] = None  # as if PyYAML had been built without libyaml
from labcore import safeyaml
results = {"libyaml": safeyaml._BaseLoader.__name__}
for name, text in json.loads(sys.stdin.read()).items():
    started = time.monotonic()
    try:
        safeyaml.load(text)
        results[name] = ["loaded", time.monotonic() - started]
    except safeyaml.YamlError as exc:
        results[name] = [str(exc), time.monotonic() - started]
print(json.dumps(results))
"""


@pytest.mark.parametrize("parser", ["libyaml", "pure"])
def test_an_alias_bomb_and_deep_nesting_answer_at_once_with_either_parser(parser):
    """PyYAML without libyaml composes recursively and expands nothing lazily: the bounds must hold there too."""
    inputs = {"bomb": BOMB, "deep lists": "[" * 50_000 + "]" * 50_000,
              "deep maps": "{a: " * 50_000 + "}" * 50_000, "long chain": "".join(
                  f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" if i else "a0: &a0 [x]\n" for i in range(40))}
    done = subprocess.run([sys.executable, "-c", PROBE, parser], input=json.dumps(inputs), cwd=ROOT,
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    assert results.pop("libyaml") == ("CSafeLoader" if parser == "libyaml" else "SafeLoader")
    assert results["bomb"][0] == "line 6: expands to more than 100000 values (aliases included)"
    assert results["deep lists"][0] == results["deep maps"][0] == "line 1: nested more than 32 levels deep"
    assert "expands to more than" in results["long chain"][0]
    assert all(seconds < 2 for _, seconds in results.values()), results


@pytest.mark.parametrize("value", [
    "x" * 10_000_000, ["y" * 1000] * 100_000, {f"k{i}": list(range(100)) for i in range(10_000)},
    1 << 100_000, -(10 ** 4000), b"z" * 1_000_000,
], ids=["10 MB text", "100,000 long items", "10,000 keys", "100,000-bit int", "4,000-digit int", "bytes"])
def test_quote_is_short_and_quick_whatever_the_value(value):
    started = time.monotonic()
    text = quote(value)
    assert len(text) <= safeyaml.QUOTE_LIMIT and time.monotonic() - started < 0.5
    assert text  # says something: the start of the value, or what it is


def test_quote_of_a_structure_that_contains_itself_ends():
    loop: list = []
    loop.append(loop)
    assert quote(loop) == "[[[...]]]" and quote("short") == "'short'"
