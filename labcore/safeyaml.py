"""YAML the lab reads back (its config, secrets.yaml, inventory.yaml), loaded with bounds.

A file the lab did not write itself may be anything: not text, a single 10 MB value,
nested 50,000 levels deep (PyYAML composes recursively), or an alias bomb (a few lines
that expand to billions of nodes). Before anything is built, the file's events are
walked once, without recursion, counting depth and the nodes the document would expand
to; only a document inside the bounds is constructed. Duplicate keys are refused
(PyYAML would silently keep the last one), and so is an alias inside the node it names
(a structure that contains itself has no end for whatever walks it next).

Every message quotes at most ~80 characters of the input (`quote`), so that no value,
however large, makes a long error line.
"""

from __future__ import annotations

import reprlib

import yaml

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 100_000  # after alias expansion: a lab's files have a few hundred
QUOTE_LIMIT = 80
MAX_INT_BITS = 14_285  # 4,300 decimal digits, the most int() reads from text

# libyaml parses about six times faster than pure Python; the bounds are the same either way.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlError(ValueError):
    """What is wrong with the text: where (e.g. "line 3", or "") and what was expected."""

    def __init__(self, where: str, expected: str):
        self.where, self.expected = where, expected
        super().__init__(f"{where}: {expected}" if where else expected)


_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxdict, _repr.maxlist, _repr.maxtuple, _repr.maxset = 2, 4, 4, 4, 4
_repr.maxstring, _repr.maxother = QUOTE_LIMIT, QUOTE_LIMIT


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """repr(value) cut to at most limit characters, in bounded work whatever the value's size."""
    try:
        text = _repr.repr(value)
    except (ValueError, RecursionError):  # repr() refuses an int of more than 4,300 digits
        text = f"an integer of {value.bit_length()} bits" if isinstance(value, int) else f"a {type(value).__name__}"
    return clip(text, limit)


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """text cut to at most limit characters, marked with ... when cut."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _line(thing) -> str:
    mark = getattr(thing, "start_mark", None) or getattr(thing, "problem_mark", None)
    return f"line {mark.line + 1}" if mark else ""


class _UniqueKeyLoader(_BaseLoader):
    """SafeLoader that refuses duplicate keys and turns a value's construction error into a YamlError."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (YamlError, yaml.YAMLError):
            raise
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. 2001-13-45, an int of 5,000 digits
            shown = f" {quote(node.value)}" if isinstance(node.value, str) else ""
            raise YamlError(_line(node), f"cannot read the value{shown}: {clip(str(exc))}") from None


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:  # `<<: *base`: merged keys may be overridden, as YAML says
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:
            raise YamlError(_line(key_node), "a key must be text or a number, not a list or a mapping") from None
        if duplicate:
            raise YamlError(_line(key_node), f"duplicate key {quote(key)}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _bounded_int(loader: _UniqueKeyLoader, node: yaml.ScalarNode) -> int:
    """An int, refused past Python's own 4,300 decimal digits (0x... escapes that limit, and repr() fails)."""
    try:
        value = loader.construct_yaml_int(node)
    except ValueError:
        if len(node.value) <= 4300:  # not a number at all (!!int abc): the caller says so
            raise
        value = None  # past Python's limit on decimal digits
    if value is None or value.bit_length() > MAX_INT_BITS:
        raise YamlError(_line(node), f"the integer {quote(node.value)} is too large (at most 4300 digits)")
    return value


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _bounded_int)


def _check_shape(text: str, max_depth: int, max_nodes: int) -> None:
    """Depth and expanded size from the event stream (iterative: no recursion, no expansion)."""
    sizes: dict[str, int] = {}  # anchor -> nodes it expands to
    stack: list[list] = []  # open collections: [anchor, nodes so far]
    total = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
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
            if any(level[0] == event.anchor for level in stack):
                raise YamlError(_line(event), f"the alias *{clip(event.anchor, 40)} is inside the node it names "
                                              f"(a structure that contains itself)")
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


def _decode(data: bytes | str, max_bytes: int) -> str:
    """data as text: UTF-8 only, at most max_bytes (a str with lone surrogates is not UTF-8 text)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise YamlError("", f"too large: more than {max_bytes} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError("", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                            f"save it as UTF-8") from None


def load(data: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
         max_nodes: int = MAX_NODES) -> object:
    """The document in data; YamlError naming the line and the problem."""
    text = _decode(data, max_bytes)
    try:
        _check_shape(text, max_depth, max_nodes)
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: builds no Python objects
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "nesting depth" in problem:  # libyaml's own bound (1,000 levels) can fire before ours is seen
            raise YamlError(_line(exc), f"nested more than {max_depth} levels deep") from None
        context = getattr(exc, "context", None)
        message = f"{context}, {problem}" if context and problem else problem
        raise YamlError(_line(exc), f"invalid YAML: {clip(message)}") from None
