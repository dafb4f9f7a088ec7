"""The ``phone`` rule in C: the phonenumbers library's metadata as tables, and the column function.

The C code (``phone`` in ``_native_phone.c``) reads and draws as :mod:`datasafe.masking.phone_fast`
does, for values of spaces, an optional ``+``, digits and the separators `` -.()/``. What it needs
to know of phonenumbers comes in a :class:`Program`: an int32 array that grows with the country
codes and (region, length) pairs a column meets. The C code leaves a value to Python when the
program lacks something and says what; :func:`column_function` adds that and asks C again.

The records of a program (offsets are indexes into the array; -1: none, -2: a pattern the
automata of :mod:`datasafe.masking.digit_dfa` do not read, so values that need it go to Python):

- ``P[0:2]``: a magic number and the version;
- ``P[2 + code]`` for codes 0-999: -2 not a country code, -1 not loaded, -3 left to Python, else
  the offset of the country's record;
- country: code, the entry phonenumbers parses its numbers with, the number of regions, then per
  region (in :func:`~datasafe.masking.phone_numbers.regions_of`'s order) its entry and the
  automaton of its leading digits;
- entry (one region's metadata): country code, automaton of the general pattern, its possible
  lengths (bit mask), first and last possible length, local-only lengths (bit mask), automata of
  the national and the international prefix, flags (1: a national prefix whose match C cannot
  place: it can match more than one prefix, or its automaton matches more than the pattern; 2: a
  national prefix transform rule; 4: an international prefix that can match more than one
  prefix), the offset of its sample table, the number of number types, then per type its
  automaton and possible lengths (-1: any);
- sample table: per national length 0-17 the offset of :func:`~datasafe.masking.phone_numbers.sample`
  in the sample bytes and its count (-1: not computed yet);
- automaton: the number of states, the next states (10 per state), whether each state accepts.
"""

from __future__ import annotations

from array import array
from functools import cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata

from datasafe.masking import native
from datasafe.masking.digit_dfa import Dfa, Unsupported, compile_dfa
from datasafe.masking.native import NativeFirst
from datasafe.masking.phone_numbers import REGIONS as _REGIONS
from datasafe.masking.phone_numbers import TYPES, regions_of, sample

_MAGIC, _VERSION = 0x50484F4E, 1
_CC_TABLE, _CC_COUNT = 2, 1000
_NONE, _UNREAD = -1, -2
_CC_NONE, _CC_UNLOADED, _CC_PYTHON = -2, -1, -3
_PREFIX_AMBIGUOUS, _TRANSFORM, _IDD_AMBIGUOUS = 1, 2, 4
_MAX_NSN = 17
_ROUNDS = 4  # C passes of one list of values: each may find a country, then a sample, missing


def kernel() -> Any:
    """The C module, when it is in use and has the phone kernel; else None."""
    c = native.RULES
    return c if c is not None and hasattr(c, "phone") else None


class Program:
    """The tables the C code reads (see the module documentation), grown on demand."""

    def __init__(self) -> None:
        codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
        self._p = array("i", [_MAGIC, _VERSION])
        self._p.extend(_CC_UNLOADED if code in codes else _CC_NONE for code in range(_CC_COUNT))
        self._samples = bytearray()
        self._entries: dict[tuple[int, str], int] = {}
        self._entry_keys: dict[int, tuple[int, str]] = {}
        self._dfas: dict[tuple[str, bool], int] = {}
        self._tables: Any = None

    def raw(self) -> tuple[bytes, bytes]:
        """The program and the digits of its samples."""
        return self._p.tobytes(), bytes(self._samples)

    def tables(self) -> Any:
        """The program as the C code takes it (``phone_tables``, checked once per change)."""
        if self._tables is None:
            self._tables = kernel().phone_tables(*self.raw())
        return self._tables

    def region_entry(self, region: str | None) -> int:
        """The entry of a region (for numbers without a country code), its country loaded; -1 for None."""
        if region is None or region not in _REGIONS:
            return -1
        meta = PhoneMetadata.metadata_for_region(region, None)
        code = meta.country_code if meta is not None else None
        if code is None or not 0 < code < _CC_COUNT or self.country(code) < 0:
            return -1  # its numbers without a country code are left to Python
        return self.entry(code, region)

    def learn(self, needs: list[int]) -> bool:
        """Add what the C code reported missing; whether anything was added."""
        before = len(self._p), len(self._samples), self._p[_CC_TABLE:_CC_TABLE + _CC_COUNT]
        for need in needs:
            if 0 < need < _CC_COUNT:
                self.country(need)
            elif need < 0:
                entry, length = divmod(-need - 1, 32)
                self._sample(entry, length)
        return before != (len(self._p), len(self._samples), self._p[_CC_TABLE:_CC_TABLE + _CC_COUNT])

    def country(self, code: int) -> int:
        """The offset of a country's record (loaded on first use); -1 when it is left to Python."""
        slot = _CC_TABLE + code
        if self._p[slot] == _CC_UNLOADED:
            try:
                self._p[slot] = self._country(code)
            except Unsupported:
                self._p[slot] = _CC_PYTHON
            self._tables = None
        return max(self._p[slot], -1)

    def _country(self, code: int) -> int:
        main = phonenumbers.region_code_for_country_code(code)
        regions = [(self.entry(code, region), self._dfa(leading.pattern) if leading is not None else _NONE)
                   for region, leading in regions_of(code)]
        return self._append([code, self.entry(code, main), len(regions), *(x for pair in regions for x in pair)])

    def entry(self, code: int, region: str) -> int:
        """The offset of the entry of phonenumbers' metadata for (country code, region); -1: none."""
        key = (code, region)
        found = self._entries.get(key)
        if found is None:
            found = self._entries[key] = self._entry(PhoneMetadata.metadata_for_region_or_calling_code(code, region))
            self._entry_keys[found] = key
        return found

    def _entry(self, meta: Any) -> int:
        if meta is None or meta.general_desc is None:
            return -1
        general = meta.general_desc
        lengths = tuple(general.possible_length)
        local = tuple(general.possible_length_local_only)
        if not 0 < meta.country_code < _CC_COUNT or any(not 0 <= n < 32 for n in lengths + local):
            raise Unsupported("lengths")
        flags = 0
        prefix = _NONE
        if meta.national_prefix_for_parsing:
            prefix = self._dfa(meta.national_prefix_for_parsing)
            if prefix == _UNREAD:  # anchored: an automaton of more prefixes tells when none matches
                prefix = self._dfa(meta.national_prefix_for_parsing, loose=True)
                flags |= _PREFIX_AMBIGUOUS
            elif not self._prefix_free(meta.national_prefix_for_parsing):
                flags |= _PREFIX_AMBIGUOUS
            if meta.national_prefix_transform_rule:
                flags |= _TRANSFORM
        international = _NONE  # phonenumbers' "NonMatch": no digits match it
        if meta.international_prefix is not None:
            international = self._dfa(meta.international_prefix)
            if not self._prefix_free(meta.international_prefix):
                flags |= _IDD_AMBIGUOUS
        kinds: list[int] = []
        for name in TYPES:
            desc = getattr(meta, name)
            if desc is None or not desc.national_number_pattern:
                continue
            kinds += [self._dfa(desc.national_number_pattern), _mask(desc.possible_length) if desc.possible_length
                      else -1]
        samples = self._append([0, -1] * (_MAX_NSN + 1))
        return self._append([meta.country_code,
                             self._dfa(general.national_number_pattern) if general.national_number_pattern else _NONE,
                             _mask(lengths), lengths[0] if lengths else -1, lengths[-1] if lengths else -1,
                             _mask(local), prefix, international, flags, samples, len(kinds) // 2, *kinds])

    def _sample(self, entry: int, length: int) -> bool:
        key = self._entry_keys.get(entry)
        if key is None or not 0 <= length <= _MAX_NSN:
            return False
        slot = self._p[entry + 9] + 2 * length
        if self._p[slot + 1] >= 0:
            return False
        numbers = sample(key[0], key[1], length)
        self._p[slot] = len(self._samples)
        self._p[slot + 1] = len(numbers)
        self._samples += "".join(numbers).encode()
        self._tables = None
        return True

    def _dfa(self, pattern: str, loose: bool = False) -> int:
        """The offset of a pattern's automaton, or -2 when it has none."""
        found = self._dfas.get((pattern, loose))
        if found is None:
            dfa = _compiled(pattern, loose)
            found = _UNREAD if dfa is None else self._append([dfa.states, *dfa.next, *map(int, dfa.accept)])
            self._dfas[pattern, loose] = found
        return found

    @staticmethod
    def _prefix_free(pattern: str) -> bool:
        dfa = _compiled(pattern)
        return dfa is not None and dfa.prefix_free

    def _append(self, record: list[int]) -> int:
        at = len(self._p)
        self._p.extend(record)
        self._tables = None
        return at


@cache
def _compiled(pattern: str, loose: bool = False) -> Dfa | None:
    try:
        return compile_dfa(pattern, loose)
    except Unsupported:
        return None


def _mask(lengths: tuple[int, ...] | list[int]) -> int:
    mask = 0
    for n in lengths:
        mask |= 1 << n
    return mask - (1 << 32) if mask >= 1 << 31 else mask  # as int32


@cache
def program() -> Program:
    """The process's program (its tables depend on the phonenumbers version only)."""
    return Program()


def column_function(key: bytes, region: str | None, limit: int) -> NativeFirst:
    """The C first choices of a list of values of a ``phone`` rule (with ``keep_format`` and
    ``keep_country_code``) whose numbers without a country code are of ``region``: a kernel as
    :mod:`datasafe.masking.transformers.kernels` describes it."""
    c, tables = kernel(), program()
    entry = tables.region_entry(region)

    def first(values: list[bytes]) -> tuple[list[bytes | None], list[int]]:
        outs, missing, needs = c.phone(key, values, tables.tables(), entry, limit)
        rounds = 1
        while needs and missing and rounds < _ROUNDS and tables.learn(needs):
            again, still, needs = c.phone(key, [values[k] for k in missing], tables.tables(), entry, limit)
            for k, out in zip(missing, again, strict=True):
                outs[k] = out
            missing = [missing[j] for j in still]
            rounds += 1
        return outs, missing

    return first
