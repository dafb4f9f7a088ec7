"""Regular expressions over decimal digits as deterministic automata (tables of 10 columns).

The C form of the ``phone`` rule checks national numbers against the phonenumbers library's
patterns; C has no Python regex engine, so the patterns become automata here: one row per state,
one column per digit, the next state or -1 (no string that starts so matches). Only what phone
number patterns use is read (digits, ``\\d``, classes and ranges of digits, groups, ``|``, ``?``,
``*``, ``+``, ``{n}``, ``{n,m}``); anything else raises :class:`Unsupported`, and the caller
leaves such numbers to Python. For a pattern ``p`` and a string of digits ``s``:

- ``Dfa.fullmatch(s)`` is ``re.fullmatch(p, s) is not None``;
- ``Dfa.prefix(s)`` is the length of the shortest prefix of ``s`` that ``p`` fullmatches (-1:
  none), so ``re.match(p, s)`` succeeds when it is not -1; when :attr:`Dfa.prefix_free` (no
  match is a prefix of another), it is where that match ends.

The automaton is the subset construction over the pattern's positions (Glushkov); phone number
patterns are tries of prefixes, so it stays small (a few hundred states for a large country).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_ALL = (1 << 10) - 1


class Unsupported(ValueError):
    """A pattern uses a construct that is not read here."""


# --- parsing ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Set:
    mask: int  # bit d: digit d


@dataclass(frozen=True)
class _Seq:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class _Alt:
    options: tuple[Node, ...]


@dataclass(frozen=True)
class _Rep:
    item: Node
    low: int
    high: int  # -1: no limit


Node = _Set | _Seq | _Alt | _Rep


class _Parser:
    def __init__(self, pattern: str, loose: bool) -> None:
        self.text = pattern
        self.at = 0
        self.loose = loose

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def take(self) -> str:
        ch = self.peek()
        if not ch:
            raise Unsupported("unexpected end of pattern")
        self.at += 1
        return ch

    def alternatives(self) -> Node:
        options = [self.sequence()]
        while self.peek() == "|":
            self.at += 1
            options.append(self.sequence())
        return options[0] if len(options) == 1 else _Alt(tuple(options))

    def sequence(self) -> Node:
        items: list[Node] = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.quantified(self.atom()))
        return _Seq(tuple(items))

    def atom(self) -> Node:
        ch = self.take()
        if ch == "(":
            if self.peek() == "?":
                if self.text[self.at:self.at + 2] != "?:":
                    raise Unsupported("only (?:...) groups")
                self.at += 2
            inner = self.alternatives()
            if self.take() != ")":
                raise Unsupported("unbalanced group")
            return inner
        if ch == "[":
            return _Set(self.char_class())
        if ch == "\\":
            if self.take() != "d":
                raise Unsupported("only the escape \\d")
            return _Set(_ALL)
        if ch.isascii() and ch.isdigit():
            return _Set(1 << int(ch))
        if ch == "$" and self.loose:
            return _Seq(())
        raise Unsupported(f"character {ch!r}")

    def char_class(self) -> int:
        negate = self.peek() == "^"
        if negate:
            self.at += 1
        mask = 0
        first = True
        while True:
            ch = self.take()
            if ch == "]" and not first:
                break
            first = False
            if ch == "\\":
                if self.take() != "d":
                    raise Unsupported("only the escape \\d in a class")
                mask |= _ALL
                continue
            if not (ch.isascii() and ch.isdigit()):
                raise Unsupported(f"character {ch!r} in a class")
            if self.peek() == "-" and self.text[self.at + 1:self.at + 2] not in ("]", ""):
                self.at += 1
                high = self.take()
                if not (high.isascii() and high.isdigit()) or high < ch:
                    raise Unsupported("a range of digits")
                for digit in range(int(ch), int(high) + 1):
                    mask |= 1 << digit
            else:
                mask |= 1 << int(ch)
        return _ALL & ~mask if negate else mask

    def quantified(self, node: Node) -> Node:
        while True:
            ch = self.peek()
            if ch == "?":
                low, high = 0, 1
            elif ch == "*":
                low, high = 0, -1
            elif ch == "+":
                low, high = 1, -1
            elif ch == "{":
                end = self.text.find("}", self.at)
                if end < 0:
                    raise Unsupported("unclosed repeat")
                body = self.text[self.at + 1:end]
                low_text, comma, high_text = body.partition(",")
                if not (low_text or comma) or not (low_text.isdigit() or low_text == "") or not (
                        high_text.isdigit() or high_text == ""):
                    raise Unsupported(f"repeat {{{body}}}")
                low = int(low_text or 0)
                high = int(high_text) if high_text else (-1 if comma else low)
                if high != -1 and high < low:
                    raise Unsupported(f"repeat {{{body}}}")
                self.at = end
            else:
                return node
            self.at += 1
            if self.peek() == "?":  # lazy: the same strings match
                self.at += 1
            elif self.peek() == "+":
                raise Unsupported("possessive repeat")
            node = _Rep(node, low, high)


def parse(pattern: str, loose: bool = False) -> Node:
    """The syntax tree of a pattern over digits (``loose``: see :func:`compile_dfa`).

    Raises:
        Unsupported: a construct phone number patterns do not use.
    """
    parser = _Parser(pattern, loose)
    node = parser.alternatives()
    if parser.at != len(pattern):
        raise Unsupported("unbalanced group")
    return node


# --- positions (Glushkov) ---------------------------------------------------------------------------

_MAX_POSITIONS = 200_000


class _Positions:
    """The positions of a pattern: the digits each one reads, and the positions that may follow it."""

    def __init__(self) -> None:
        self.masks: list[int] = []
        self.follow: list[set[int]] = []

    def add(self, mask: int) -> int:
        if len(self.masks) >= _MAX_POSITIONS:
            raise Unsupported("pattern too large")
        self.masks.append(mask)
        self.follow.append(set())
        return len(self.masks) - 1

    def build(self, node: Node) -> tuple[bool, set[int], set[int]]:
        """(nullable, first positions, last positions) of a fresh copy of ``node``."""
        if isinstance(node, _Set):
            p = self.add(node.mask)
            return False, {p}, {p}
        if isinstance(node, _Seq):
            return self.chain(node.items)
        if isinstance(node, _Alt):
            nullable, first, last = False, set[int](), set[int]()
            for option in node.options:
                n, f, la = self.build(option)
                nullable, first, last = nullable or n, first | f, last | la
            return nullable, first, last
        nullable, first, last = self.chain([node.item] * node.low)
        if node.high == -1:  # then any number more: one copy that loops
            _, f, la = self.build(node.item)
            for p in la | last:
                self.follow[p] |= f
            return nullable, first | f if nullable else first, last | la
        for _ in range(node.high - node.low):  # optional copies: each may follow any earlier one
            _, f, la = self.build(node.item)
            for p in last:
                self.follow[p] |= f
            if nullable:
                first = first | f
            last = last | la
        return nullable, first, last

    def chain(self, nodes: Sequence[Node]) -> tuple[bool, set[int], set[int]]:
        """(nullable, first, last) of fresh copies of ``nodes`` one after another."""
        nullable, first, last = True, set[int](), set[int]()
        for node in nodes:
            n, f, la = self.build(node)
            for p in last:
                self.follow[p] |= f
            if nullable:
                first = first | f
            last = last | la if n else set(la)
            nullable = nullable and n
        return nullable, first, last


# --- the automaton ----------------------------------------------------------------------------------

_MAX_STATES = 100_000


@dataclass(frozen=True)
class Dfa:
    """A deterministic automaton over the digits 0-9; state 0 starts."""

    #: the next state of state s on digit d at ``next[10 * s + d]``; -1: no match can follow
    next: tuple[int, ...]
    #: whether each state ends a match
    accept: tuple[bool, ...]

    @property
    def states(self) -> int:
        return len(self.accept)

    def fullmatch(self, digits: str) -> bool:
        state = 0
        for ch in digits:
            state = self.next[10 * state + ord(ch) - 48]
            if state < 0:
                return False
        return self.accept[state]

    def prefix(self, digits: str) -> int:
        """The length of the shortest prefix of ``digits`` that matches, or -1."""
        if self.accept[0]:
            return 0
        state = 0
        for i, ch in enumerate(digits):
            state = self.next[10 * state + ord(ch) - 48]
            if state < 0:
                return -1
            if self.accept[state]:
                return i + 1
        return -1

    @property
    def prefix_free(self) -> bool:
        """No match is a proper prefix of another: from no accepting state does a match go on."""
        live = self._live()
        return not any(self.accept[s] and any(live[t] for t in self.next[10 * s:10 * s + 10] if t >= 0)
                       for s in range(self.states))

    def _live(self) -> list[bool]:
        """Whether a match can end at or after each state."""
        live = list(self.accept)
        changed = True
        while changed:
            changed = False
            for s in range(self.states):
                if not live[s] and any(t >= 0 and live[t] for t in self.next[10 * s:10 * s + 10]):
                    live[s] = changed = True
        return live


def compile_dfa(pattern: str, loose: bool = False) -> Dfa:
    """The automaton of a pattern over digits (see the module documentation).

    ``loose`` reads ``$`` as matching anywhere: the automaton then matches every string the pattern
    matches, and maybe more, so it can still tell that a pattern does not match (national prefix
    rules such as ``([2-9]\\d{6})$|1``).

    Raises:
        Unsupported: a construct phone number patterns do not use, or a pattern too large.
    """
    positions = _Positions()
    nullable, first, last = positions.build(parse(pattern, loose))
    masks, follow = positions.masks, positions.follow
    start: frozenset[int] = frozenset()
    numbers: dict[frozenset[int], int] = {start: 0}
    order = [start]
    table: list[int] = []
    accept: list[bool] = []
    while len(accept) < len(order):
        state = order[len(accept)]
        if len(accept) == 0:
            reachable: set[int] = first
            accept.append(nullable)
        else:
            reachable = set().union(*(follow[p] for p in state))
            accept.append(not state.isdisjoint(last))
        for digit in range(10):
            bit = 1 << digit
            target = frozenset(p for p in reachable if masks[p] & bit)
            if not target:
                table.append(-1)
                continue
            number = numbers.get(target)
            if number is None:
                if len(order) >= _MAX_STATES:
                    raise Unsupported("automaton too large")
                number = numbers[target] = len(order)
                order.append(target)
            table.append(number)
    return Dfa(tuple(table), tuple(accept))
