"""YAML with line numbers: every rules error names the file, the line and the key."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from datasafe.masking.errors import RulesError
from datasafe.yamlsafe import MAX_RULES_BYTES, composed

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Loc:
    """A place in a rules document: its file, the key path, and the line of every path."""

    source: str | None = None
    lines: Mapping[Path, int] = field(default_factory=dict, repr=False)
    path: Path = ()

    def child(self, *keys: str | int) -> Loc:
        return Loc(self.source, self.lines, self.path + keys)

    @property
    def line(self) -> int | None:
        """The line of this path, or of its nearest ancestor the document has."""
        for end in range(len(self.path), -1, -1):
            line = self.lines.get(self.path[:end])
            if line is not None:
                return line
        return None

    @property
    def key(self) -> str:
        return ".".join(str(p) for p in self.path)

    def prefix(self) -> str:
        """``file:line: key: `` with the parts that are known."""
        parts = []
        if self.source is not None:
            line = self.line
            parts.append(f"{self.source}:{line}" if line is not None else self.source)
        if self.path:
            parts.append(self.key)
        return "".join(f"{p}: " for p in parts)

    def error(self, message: str, *, hint: str | None = None) -> RulesError:
        return RulesError(self.prefix() + message, hint=hint)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_yaml(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    """Parse one YAML document; returns the data and the 1-based line of every key path.

    Mapping keys are taken as written (``on:`` is the string ``"on"``, not True); a key that
    appears twice in one mapping is an error rather than silently the last one.
    """
    lines: dict[Path, int] = {}
    try:
        # size, nesting and alias expansion are bounded there (a "billion laughs" is refused)
        with composed(text, source, max_bytes=MAX_RULES_BYTES, error=RulesError) as (loader, node):
            if node is None:
                raise RulesError(f"{source}: the rules file is empty")
            return _convert(loader, node, (), lines, source), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise RulesError(f"{where}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: invalid YAML: {exc}") from exc


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: Path, lines: dict[Path, int], source: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise RulesError(f"{source}:{key_node.start_mark.line + 1}: a key must be a plain name")
            key = str(key_node.value)
            child: Path = (*path, key)
            if key in out:
                where = ".".join(str(p) for p in child)
                raise RulesError(f"{source}:{key_node.start_mark.line + 1}: {where}: duplicate key {key!r}")
            lines[child] = key_node.start_mark.line + 1
            out[key] = _convert(loader, value_node, child, lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, (*path, i), lines, source) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
