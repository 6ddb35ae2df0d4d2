"""pydantic's first validation error as the user's one line: the key path and what was expected.

pydantic keeps the offending input in each error; shown whole, a 10 MB value or an
expanded alias is a 10-million-character line. Every part quoted here is cut to ~80
characters (labcore.safeyaml.quote), in bounded work, whatever the input.
"""

from __future__ import annotations

from labcore.safeyaml import clip, quote

# Backstop for a whole `expected` sentence: the parts are cut already, this keeps the line a line.
MAX_EXPECTED = 300


def key_path(loc: tuple) -> str:
    """nodes.object1.volumes from pydantic's loc, without its internal steps (function-after[...], literal[...])."""
    parts = (clip(str(part), 40) for part in loc)
    return ".".join(part for part in parts if not part.startswith(("function-after", "function-before", "literal[")))


def expected(error: dict) -> str:
    """What the key should have been, in the config's words, quoting at most ~80 characters of the value."""
    return clip(_sentence(error), MAX_EXPECTED)


def _sentence(error: dict) -> str:
    message = error["msg"].removeprefix("Value error, ")
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against configs/lab.yaml)"
    if kind == "missing":
        return "required key is missing"
    if kind == "string_pattern_mismatch":
        return f"expected text matching {error['ctx']['pattern']}, got {quote(error['input'])}"
    if kind == "literal_error":
        return message.replace("Input should be", "expected")
    if "input" in error and kind not in ("value_error", "assertion_error"):
        return f"{message.replace('Input should', 'expected to')}, got {quote(error['input'])}"
    return message
