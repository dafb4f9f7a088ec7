"""``suggest_rules``: a starter rules file that lists every column of a snapshot.

Columns whose names suggest personal data get a transformer; all others are kept. The output is
a starting point to review, not a guarantee: names do not reveal everything (a ``data`` column
may hold e-mail addresses).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from datasafe.masking.transformers import TRANSFORMERS
from datasafe.masking.types import ColumnInfo

# (pattern on the normalised column name, transformer). First match wins; order matters
# (email_address is an e-mail, ip_address an IP, both before the generic address).
SUGGESTIONS: tuple[tuple[str, str], ...] = (
    (r"(^|_)e_?mail", "email"),
    (r"(^|_)ip(_?addr(ess)?)?$|^ip_|remote_addr", "ip"),
    (r"pass(word|wd)?(_|$)|passphrase|(^|_)(token|secret|api_?key|salt)(_|$)", "secret"),
    (r"^(first_?name|given_?name|forename|fname)$", "first_name"),
    (r"^(last_?name|surname|family_?name|lname)$", "last_name"),
    (r"^(full_?name|name|(customer|contact|person|display|account_?holder)_?name)$", "name"),
    (r"phone|mobile|(^|_)tel(ephone)?(_|$)|(^|_)fax(_|$)|(^|_)cell(_|$)", "phone"),
    (r"(^|_)(ssn|nino|bsn|national_?id|social_?security(_?number)?|tax_?id|passport(_?n(o|umber))?)(_|$)",
     "national_id"),
    (r"credit_?card|card_?n(o|um|umber)|^cc(_?n(o|um|umber))?$|(^|_)pan$", "credit_card"),
    (r"(^|_)iban(_|$)", "iban"),
    (r"birth|(^|_)dob(_|$)", "date_of_birth"),
    (r"user_?name|(^|_)login(_?name)?$|(^|_)handle$", "username"),
    (r"^street|street$|address_?line|^addr(ess)?_?\d$", "street"),
    (r"address|(^|_)addr(_|$)", "address"),
    (r"(^|_)(city|town)(_|$)", "city"),
    (r"(^|_)(zip|zip_?code|post_?code|postal_?code|plz)(_|$)", "postcode"),
    (r"(^|_)(company|employer|organi[sz]ation)(_?name)?$", "company"),
    (r"(^|_)(notes?|comments?|description|remarks?|bio|memo|message)(_|$)", "text"),
)
_COMPILED = tuple((re.compile(p), t) for p, t in SUGGESTIONS)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "keep"}


def suggest_transformer(column: ColumnInfo) -> str | None:
    """The transformer a column's name and type suggest, or None (keep)."""
    name = re.sub(r"[^a-z0-9]+", "_", column.name.lower()).strip("_")
    for pattern, transformer in _COMPILED:
        if pattern.search(name):
            if transformer == "secret":
                transformer = "null" if column.nullable else "hash"
            kinds = TRANSFORMERS[transformer].kinds
            return transformer if kinds is None or column.kind in kinds else None
    return None


def _scalar(text: str) -> str:
    return text if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS else json.dumps(text)


def suggest_rules(tables: Sequence[tuple[str, Sequence[ColumnInfo]]], *, locale: str = "en_US") -> str:
    """A starter rules file (YAML text) classifying every column of ``tables``.

    Deterministic: the same tables give the same text. Columns that look personal by name and
    whose type suits the transformer are masked; every other column is listed as ``keep``.
    """
    lines = [
        "# datasafe masking rules: a starting point proposed from the column names alone.",
        "# Review every column: names do not reveal everything. Columns marked `keep` are copied",
        "# unchanged. The masking key comes from $DATASAFE_MASKING_KEY (or set key_file).",
        "# Reference: docs/masking.md",
        "version: 1",
        f"locale: {_scalar(locale)}",
        "strict: true",
        "tables:" if tables else "tables: {}",
    ]
    for table, columns in tables:
        lines.append(f"  {_scalar(table)}:")
        if not columns:
            lines.append("    columns: {}")
            continue
        lines.append("    columns:")
        for column in columns:
            transformer = suggest_transformer(column)
            rule = _scalar(transformer) if transformer else "keep"
            if transformer in ("email", "username") and column.unique:
                rule = f"{{{transformer}: {{unique: true}}}}"
            note = f"  # {column.type}" if column.type else ""
            lines.append(f"      {_scalar(column.name)}: {rule}{note}")
    return "\n".join(lines) + "\n"
