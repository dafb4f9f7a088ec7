"""The one way datasafe reads YAML (``datasafe.yml``, masking rules): bounded in size and expansion.

``yaml.SafeLoader`` builds no arbitrary objects, but it happily composes a "billion laughs": nine
anchors that each alias the one before nine times make a file of a few hundred bytes whose tree
has 10^9 nodes. The loader shares aliased nodes, so parsing is cheap; whatever walks the tree
afterwards (interpolating ``${VAR}`` in the configuration, locating rule keys by line, pydantic)
visits every copy, and a 1 KiB file took 20 s and 366 MB. Real files use anchors to share a few
settings, so the tree may grow through aliases by :data:`MAX_ALIAS_NODES` nodes at most, and the
file itself is limited in size before it is parsed. A refusal is a one-line error of the caller's
kind (``ConfigError`` for the configuration, ``RulesError`` for rules: exit code 3).

Syntax errors are left to the caller as ``yaml.YAMLError``: each names its file and line its own way.
So are values a tag cannot make (``!!int`` of 5,000 digits, a 13th month, ``!!float x``): PyYAML
raises a plain ValueError (or worse) for them, which :class:`BoundedLoader` turns into a
``yaml.YAMLError`` with the value's line, like any other mistake in the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from datasafe.errors import ConfigError

#: largest configuration file read
MAX_CONFIG_BYTES = 1 << 20
#: largest masking rules file read (rules for thousands of tables stay far below)
MAX_RULES_BYTES = 4 << 20
#: nodes the document's tree may gain through aliases (``*name`` and ``<<: *name``)
MAX_ALIAS_NODES = 10_000
#: deepest nesting of mappings and lists (a configuration or rules file needs about 8)
MAX_DEPTH = 100


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose constructors fail only with ``yaml.YAMLError``."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        # a tag on a value of the wrong form (`!!bool maybe`, `!!timestamp` on text no date pattern
        # matches) fails with whatever the constructor meets first: KeyError, AttributeError, ...
        except Exception as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid {node.tag.rsplit(':', 1)[-1]} value: {exc}", node.start_mark) from None


def read_text(path: str | os.PathLike[str], *, max_bytes: int, error: type[ConfigError], what: str) -> str:
    """The UTF-8 text of ``path``, refused with ``error`` beyond ``max_bytes`` (never read whole).

    OSError and UnicodeDecodeError are the caller's to report (missing file, unreadable file)."""
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{path}: {what} is larger than {_size(max_bytes)}: refused")
    return data.decode("utf-8")


@contextmanager
def composed(text: str, source: str, *, max_bytes: int, error: type[ConfigError]
             ) -> Iterator[tuple[BoundedLoader, yaml.Node | None]]:
    """The composed node graph of the single YAML document ``text`` and the loader that made it
    (to construct values with), after the size, depth and alias limits are checked.

    Raises:
        error: ``text`` is larger than ``max_bytes``, nests deeper than :data:`MAX_DEPTH`, or
            grows through aliases by more than :data:`MAX_ALIAS_NODES` nodes.
        yaml.YAMLError: it is not one valid YAML document.
    """
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise error(f"{source}: larger than {_size(max_bytes)}: refused")
    loader = BoundedLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise error(f"{source}: nested more than {MAX_DEPTH} levels deep: refused") from None
        if node is not None:
            _check_expansion(node, source, error)
        yield loader, node
    finally:
        loader.dispose()


def safe_load(text: str, source: str, *, max_bytes: int, error: type[ConfigError]) -> Any:
    """``yaml.safe_load`` of ``text`` within the limits of :func:`composed` (None for an empty document)."""
    with composed(text, source, max_bytes=max_bytes, error=error) as (loader, node):
        return None if node is None else loader.construct_document(node)


def _check_expansion(root: yaml.Node, source: str, error: type[ConfigError]) -> None:
    """Refuse a tree much larger than its graph. Each distinct node's subtree size is computed
    once (memoized), so this takes time in proportion to the file, not to the tree."""
    tree: dict[int, int] = {}  # id(node) -> nodes of its subtree, aliases expanded
    active: set[int] = set()  # the nodes on the current path: an alias back to one is a cycle

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in tree:
            return tree[key]
        if key in active:
            raise error(f"{source}: an alias refers to a node that contains it: refused")
        if depth > MAX_DEPTH:
            raise error(f"{source}: nested more than {MAX_DEPTH} levels deep: refused")
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        active.add(key)
        for child in children:
            total += size(child, depth + 1)
        active.discard(key)
        tree[key] = total
        return total

    if size(root, 0) - len(tree) > MAX_ALIAS_NODES:
        raise error(f"{source}: its aliases expand to more than {MAX_ALIAS_NODES:,} nodes: refused")


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n:,} bytes"
