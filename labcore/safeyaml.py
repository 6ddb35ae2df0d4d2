"""YAML the lab reads back (its config, secrets.yaml, inventory.yaml), loaded with bounds.

A file the lab did not write itself may be anything: not text, a single 10 MB value,
nested 50,000 levels deep (PyYAML composes recursively), or an alias bomb (a few lines
that expand to billions of nodes). Before anything is built, the file's events are
walked once, without recursion, counting depth and the nodes the document would expand
to; only a document inside the bounds is constructed. Duplicate keys are refused
(PyYAML would silently keep the last one).
"""

from __future__ import annotations

import yaml

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 100_000  # after alias expansion: a lab's files have a few hundred


class YamlError(ValueError):
    """What is wrong with the text: where (e.g. "line 3", or "") and what was expected."""

    def __init__(self, where: str, expected: str):
        self.where, self.expected = where, expected
        super().__init__(f"{where}: {expected}" if where else expected)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise YamlError(f"line {key_node.start_mark.line + 1}", f"duplicate key {_short(key)}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _line(event) -> str:
    return f"line {event.start_mark.line + 1}" if getattr(event, "start_mark", None) else ""


def _check_shape(text: str, max_depth: int, max_nodes: int) -> None:
    """Depth and expanded size from the event stream (iterative: no recursion, no expansion)."""
    sizes: dict[str, int] = {}  # anchor -> nodes it expands to
    stack: list[list] = []  # open collections: [anchor, nodes so far]
    total = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) >= max_depth:
                raise YamlError(_line(event), f"nested more than {max_depth} levels deep")
            stack.append([event.anchor, 1])
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, count = stack.pop()
        elif isinstance(event, yaml.ScalarEvent):
            anchor, count = event.anchor, 1
        elif isinstance(event, yaml.AliasEvent):
            anchor, count = None, sizes.get(event.anchor, 1)
        else:
            continue
        if anchor:
            sizes[anchor] = count
        if stack:
            stack[-1][1] += count
        else:
            total += count
        if total + sum(level[1] for level in stack) > max_nodes:
            raise YamlError(_line(event), f"expands to more than {max_nodes} values (aliases included)")


def load(data: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
         max_nodes: int = MAX_NODES) -> object:
    """The document in data; YamlError naming the line and the problem."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise YamlError("", f"{len(raw)} bytes is too large (at most {max_bytes})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError("", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    try:
        _check_shape(text, max_depth, max_nodes)
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlError(f"line {mark.line + 1}" if mark else "", f"invalid YAML: {_short(problem)}") from None
