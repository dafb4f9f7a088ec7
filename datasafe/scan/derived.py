"""Columns derived from others: copies of personal data that a rule for the original misses.

Masking ``customers.email`` leaves its personal data in ``email_lower GENERATED ALWAYS AS
(lower(email))``, in a ``search tsvector`` a trigger fills from the notes, in a ``contact``
column a trigger sets from the e-mail, and in a ``district`` column that repeats the city for
a good share of the rows. None of these looks like an e-mail or a city to a detector (or it
does, but nothing says it must change together with its source). This module finds them:

- **tsvector** columns whose lexemes are the words of a text column of the same row (checked on
  the sample: stems and prefixes of the row's words);
- **generated** columns whose expression reads a column that holds personal data (from the
  schema text of kind ``generated``);
- **trigger-maintained** columns: a trigger (its function's body, for PostgreSQL) assigns
  ``NEW.col`` from a column with personal data, or updates ``col`` of the same table from one;
- **copies**: a column whose value equals, or is contained in (as whole words), the value of a
  column with personal data in the same row for a clear share of the sample;
- **copies across a foreign key** (:func:`derived_across`): a column whose value equals, or is
  contained in, a personal column of the row its foreign key refers to (``address.district``
  repeating ``city.city`` of its ``city_id``).

Evidence is counts and column names, never values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from datasafe.engines.kinds import column_kind
from datasafe.engines.sql_tokens import Token, tokenize
from datasafe.scan.model import Finding, SchemaText
from datasafe.scan.sample import TableSample
from datasafe.snapshot.manifest import TableEntry

#: a copy is reported when at least this share of the rows where both columns have a value match ...
COPY_SHARE = 0.10
#: ... and more than a handful of rows do, with at least a few different values (not one placeholder)
COPY_MIN_ROWS = 6
COPY_MIN_DISTINCT = 3
#: share of rows whose tsvector is made of the words of a text column
TSVECTOR_SHARE = 0.5
TSVECTOR_MIN_ROWS = 3
#: characters of a cell looked at for words (tsvector and text)
TEXT_LIMIT = 1 << 16

_LEXEME = re.compile(r"'((?:[^']|'')*)'")
_WORD = re.compile(r"[^\W_]+")
_LETTER = re.compile(r"[^\W\d_]")

Add = Callable[[str, Finding], None]


def derived_columns(sample: TableSample, schema: list[SchemaText], pii_columns: set[str]) -> dict[str, list[Finding]]:
    """Columns of ``sample.table`` derived from another column, with the reason.

    Args:
        sample: the table's sampled rows.
        schema: the schema text of the whole database (:mod:`datasafe.scan.schema_text`).
        pii_columns: the columns of this table already found to hold personal data.

    Returns:
        column name -> findings of category ``derived`` (``source_column`` is ``table.column``).
        A generated column may be named although the sample lacks it: snapshots do not store
        generated columns.
    """
    out: dict[str, list[Finding]] = {}
    names = {c.name.casefold(): c.name for c in sample.columns}

    def add(column: str, finding: Finding) -> None:
        out.setdefault(names.get(column.casefold(), column), []).append(finding)

    pii = {p.casefold(): p for p in pii_columns}
    _tsvectors(sample, pii, add)
    _generated(sample, schema, pii, add)
    _triggers(sample, schema, pii, add)
    _copies(sample, pii, add)
    return out


def _source(sample: TableSample, column: str) -> str:
    return f"{sample.table}.{column}"


# -- tsvector ---------------------------------------------------------------------------------------
def _lexemes(value: str) -> set[str]:
    return {m.group(1).replace("''", "'").casefold() for m in _LEXEME.finditer(value[:TEXT_LIMIT])}


def _prefixes(words: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for w in words:
        out.update(w[:k] for k in range(2, len(w) + 1))
    return out


def _row_matches(lexemes: set[str], text: str) -> bool | None:
    """Whether a row's tsvector is made of the words of ``text`` (None: nothing to compare)."""
    words = {w.casefold() for w in _WORD.findall(text[:TEXT_LIMIT])}
    if not lexemes or not words:
        return None
    prefixes = _prefixes(words)
    # a stem is a prefix of its word, but for a changed last letter (happy -> happi)
    found = sum(1 for lx in lexemes if lx in prefixes or (len(lx) >= 4 and lx[:-1] in prefixes))
    if found * 2 >= len(lexemes):
        return True
    # a tsvector made of several columns: most words of this one are in it
    stems = lexemes | {lx[:-1] for lx in lexemes if len(lx) >= 4}
    long = [w for w in words if len(w) >= 4]
    covered = sum(1 for w in long if any(w[:k] in stems for k in range(3, len(w) + 1)))
    return bool(long) and covered * 2 >= len(long)


def _tsvectors(sample: TableSample, pii: dict[str, str], add: Add) -> None:
    for v, vcol in enumerate(sample.columns):
        if not vcol.type.lower().startswith("tsvector"):
            continue
        for t, tcol in enumerate(sample.columns):
            if t == v or column_kind(tcol.type) in ("bytes", "int", "float", "decimal", "bool") or \
                    tcol.type.lower().startswith("tsvector"):
                continue
            compared = matched = 0
            for row in sample.rows:
                vec, text = row[v], row[t]
                if not vec or not text:
                    continue
                verdict = _row_matches(_lexemes(vec), text)
                if verdict is None:
                    continue
                compared += 1
                matched += verdict
            if matched >= TSVECTOR_MIN_ROWS and matched >= TSVECTOR_SHARE * compared:
                personal = tcol.name.casefold() in pii
                note = "" if personal else f" ({tcol.name} was not found to hold personal data itself)"
                add(vcol.name, Finding(
                    "derived", 0.9 if personal else 0.6,
                    f"{matched} of {compared} sampled rows: the tsvector's lexemes are words of {tcol.name} in the "
                    f"same row{note}", "type", source_column=_source(sample, tcol.name)))


# -- generated columns and triggers ----------------------------------------------------------------
def _code(text: str) -> list[Token]:
    return [t for t in tokenize(text, "generic") if t.kind != "comment"]


def _reads(tokens: list[Token], pii: dict[str, str]) -> list[str]:
    """Columns with personal data that ``tokens`` (an expression) name, in order, once each."""
    out: list[str] = []
    for i, t in enumerate(tokens):
        if t.kind not in ("word", "ident"):
            continue
        if i + 1 < len(tokens) and tokens[i + 1].kind == "op" and tokens[i + 1].value in ("(", "."):
            continue  # a function, or the NEW/OLD/table before a column
        name = pii.get(t.value.casefold())
        if name is not None and name not in out:
            out.append(name)
    return out


def _generated(sample: TableSample, schema: list[SchemaText], pii: dict[str, str], add: Add) -> None:
    prefix = f"generated column {sample.table}."
    for piece in schema:
        if piece.kind != "generated" or not piece.object.startswith(prefix):
            continue
        column = piece.object[len(prefix):]
        for source in _reads(_code(piece.text), pii):
            if source.casefold() != column.casefold():
                add(column, Finding("derived", 0.95, f"generated column: its expression reads {source}", "derived",
                                    source_column=_source(sample, source)))


def _names_table(name: str, table: str) -> bool:
    """Whether ``name`` (as written in SQL, maybe unqualified) is ``table`` (maybe qualified)."""
    name, table = name.casefold(), table.casefold()
    return name == table or table.endswith("." + name) or name.endswith("." + table)


def _trigger_bodies(sample: TableSample, schema: list[SchemaText]) -> list[tuple[str, str]]:
    """(trigger name, code that runs) of each trigger on ``sample.table``: a PostgreSQL trigger's
    function body, or a MySQL/SQLite trigger's own text."""
    functions = {}
    for piece in schema:
        if piece.kind == "function":
            words = piece.object.split(" ", 1)[-1]
            functions[words.split("(", 1)[0].casefold()] = piece.text
    out = []
    for piece in schema:
        if piece.kind != "trigger" or not piece.object.startswith("trigger "):
            continue
        name, sep, table = piece.object[len("trigger "):].rpartition(" on ")
        if not sep or not _names_table(table, sample.table):
            continue
        code = piece.text
        called = re.search(r"EXECUTE\s+(?:FUNCTION|PROCEDURE)\s+([^\s(]+)\s*\(", code, re.I)
        if called:
            fn = "".join(t.value for t in _code(called.group(1)))
            body = functions.get(fn.casefold()) or next(
                (text for key, text in functions.items() if key.endswith("." + fn.casefold())), "")
            # the code is the function's body, a string ($$...$$) of its CREATE statement
            code = "\n;\n".join([*(t.value for t in tokenize(body, "generic") if t.kind == "string"), body])
        out.append((name, code))
    return out


def _assignments(tokens: list[Token], table: str) -> list[tuple[str, list[Token]]]:
    """(column, expression) of ``NEW.col := expr``, ``SET NEW.col = expr`` and ``UPDATE table SET col = expr``."""
    out: list[tuple[str, list[Token]]] = []
    n = len(tokens)
    for i, t in enumerate(tokens):
        if t.kind == "word" and t.key == "NEW" and i + 3 < n and tokens[i + 1].value == "." \
                and tokens[i + 3].kind == "op" and tokens[i + 3].value in (":=", "="):
            previous = tokens[i - 1] if i else None
            statement_start = previous is None or previous.value == ";" or previous.key in (
                "SET", "BEGIN", "THEN", "ELSE", "LOOP", "DECLARE") or previous.value == ","
            if tokens[i + 3].value == ":=" or statement_start:
                out.append((tokens[i + 2].value, _until_end(tokens, i + 4)))
        elif t.kind == "word" and t.key == "UPDATE" and i + 2 < n:
            j, target = i + 1, ""
            while j < n and (tokens[j].kind in ("word", "ident") or tokens[j].value == ".") and tokens[j].key != "SET":
                target += tokens[j].value if tokens[j].key not in ("ONLY", "OR") else ""
                j += 1
            if j < n and tokens[j].key == "SET" and _names_table(target, table):
                for part in _set_list(tokens, j + 1):
                    if len(part) > 2 and part[1].value == "=" and part[0].kind in ("word", "ident"):
                        out.append((part[0].value, part[2:]))
    return out


_END_WORDS = {"THEN", "END", "ELSE", "ELSIF", "LOOP", "WHERE", "RETURNING", "FROM", "RETURN", "IF"}


def _until_end(tokens: list[Token], i: int) -> list[Token]:
    out: list[Token] = []
    depth = 0
    for t in tokens[i:]:
        if t.kind == "op" and t.value == "(":
            depth += 1
        elif t.kind == "op" and t.value == ")":
            depth -= 1
            if depth < 0:
                break
        elif depth == 0 and (t.value in (";", ",") or t.key in _END_WORDS):
            break
        out.append(t)
    return out


def _set_list(tokens: list[Token], i: int) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for t in tokens[i:]:
        if t.kind == "op" and t.value == "(":
            depth += 1
        elif t.kind == "op" and t.value == ")":
            depth -= 1
        if depth == 0 and (t.value == ";" or t.key in _END_WORDS):
            break
        if depth == 0 and t.value == ",":
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def _triggers(sample: TableSample, schema: list[SchemaText], pii: dict[str, str], add: Add) -> None:
    for trigger, code in _trigger_bodies(sample, schema):
        for column, expr in _assignments(_code(code), sample.table):
            for source in _reads(expr, pii):
                if source.casefold() != column.casefold():
                    add(column, Finding("derived", 0.9, f"set by trigger {trigger} from {source}", "derived",
                                        source_column=_source(sample, source)))


# -- copies ---------------------------------------------------------------------------------------
def _contained(part: str, whole: str) -> bool:
    """Whether ``part`` occurs in ``whole`` as whole words (both case-folded)."""
    start = whole.find(part)
    while start >= 0:
        end = start + len(part)
        before = whole[start - 1] if start else " "
        after = whole[end] if end < len(whole) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        start = whole.find(part, start + 1)
    return False


def _copies(sample: TableSample, pii: dict[str, str], add: Add) -> None:
    kinds = [column_kind(c.type) for c in sample.columns]
    usable = [i for i, c in enumerate(sample.columns)
              if kinds[i] not in ("bytes", "bool") and not c.type.lower().startswith("tsvector")]
    if not usable or not pii:
        return
    values = {i: [v.strip().casefold() if v else "" for v in (row[i] for row in sample.rows)] for i in usable}
    for p in usable:
        pname = sample.columns[p].name
        if pname.casefold() not in pii:
            continue
        for c in usable:
            if c == p:
                continue
            cname = sample.columns[c].name
            # a column with personal data of its own may be a copy, but containment (a first name in an
            # e-mail address) says nothing about which one is derived
            contain = cname.casefold() not in pii
            compared = equal = inside = 0
            distinct: set[str] = set()
            for cv, pv in zip(values[c], values[p], strict=True):
                if not cv or not pv:
                    continue
                compared += 1
                if cv == pv:
                    equal += 1
                    distinct.add(cv)
                elif contain and len(cv) >= 3 and _LETTER.search(cv) and _contained(cv, pv):
                    inside += 1
                    distinct.add(cv)
            matched = equal + inside
            if matched < COPY_MIN_ROWS or matched < COPY_SHARE * compared or len(distinct) < COPY_MIN_DISTINCT:
                continue
            if not inside:
                how = f"equal {pname}"
            elif not equal:
                how = f"are contained in {pname}"
            else:
                how = f"equal or are contained in {pname} ({equal} equal)"
            add(cname, Finding("derived", min(0.85, 0.5 + matched / compared / 2),
                               f"{matched} of {compared} sampled rows {how} in the same row", "values",
                               source_column=_source(sample, pname)))


def _match(part: str, whole: str) -> str | None:
    """``equal``, ``inside`` (``part`` as whole words of ``whole``) or None (both case-folded)."""
    if part == whole:
        return "equal"
    if len(part) >= 3 and _LETTER.search(part) and _contained(part, whole):
        return "inside"
    return None


def derived_across(samples: dict[str, TableSample], tables: Sequence[TableEntry],
                   pii: dict[str, set[str]]) -> dict[tuple[str, str], list[Finding]]:
    """Columns that copy a personal column of the row their foreign key refers to.

    Args:
        samples: the sampled rows, by table.
        tables: the tables with their foreign keys (a manifest's, or ``describe``'s).
        pii: table -> its columns found to hold personal data (not only derived).

    Returns:
        (table, column) -> findings of category ``derived``, for columns without personal data
        of their own: equal to (or contained in, as whole words) the referenced row's value in at
        least :data:`COPY_SHARE` of the sampled rows whose referenced row is in the parent's sample.
    """
    by_name = {t.name: t for t in tables}
    out: dict[tuple[str, str], list[Finding]] = {}
    for table in tables:
        child = samples.get(table.name)
        if child is None:
            continue
        cindex = {c.name: i for i, c in enumerate(child.columns)}
        for fk in table.foreign_keys:
            parent, ptable = samples.get(fk.ref_table), by_name.get(fk.ref_table)
            if parent is None or ptable is None or not pii.get(fk.ref_table):
                continue
            refs = fk.ref_columns if all(fk.ref_columns) else ptable.primary_key
            pindex = {c.name: i for i, c in enumerate(parent.columns)}
            if len(refs) != len(fk.columns) or not all(r in pindex for r in refs) \
                    or not all(c in cindex for c in fk.columns):
                continue
            rows = {tuple(r[pindex[k]] for k in refs): r for r in parent.rows}
            sources = [(n, pindex[n]) for n in sorted(pii[fk.ref_table]) if n in pindex]
            keys = [cindex[c] for c in fk.columns]
            for c, col in enumerate(child.columns):
                if col.name in fk.columns or col.name in pii.get(table.name, set()) \
                        or column_kind(col.type) in ("bytes", "bool") or col.type.lower().startswith("tsvector"):
                    continue
                for pname, p in sources:
                    compared, counts, distinct = 0, {"equal": 0, "inside": 0}, set()
                    for row in child.rows:
                        ref, value = rows.get(tuple(row[k] for k in keys)), row[c]
                        if ref is None or not value or not ref[p]:
                            continue
                        cv, pv = value.strip().casefold(), str(ref[p]).strip().casefold()
                        compared += 1
                        how = _match(cv, pv) if cv and pv else None
                        if how:
                            counts[how] += 1
                            distinct.add(cv)
                    matched = counts["equal"] + counts["inside"]
                    if matched < COPY_MIN_ROWS or matched < COPY_SHARE * compared or len(distinct) < COPY_MIN_DISTINCT:
                        continue
                    how = "equal" if not counts["inside"] else "are contained in" if not counts["equal"] else \
                        f"equal or are contained in ({counts['equal']} equal)"
                    out.setdefault((table.name, col.name), []).append(Finding(
                        "derived", min(0.85, 0.5 + matched / compared / 2),
                        f"{matched} of {compared} sampled rows {how} {fk.ref_table}.{pname} of the row "
                        f"{', '.join(fk.columns)} refers to", "values", source_column=f"{fk.ref_table}.{pname}"))
    return out
