"""Masking: rules that turn a snapshot into an anonymized copy, and the audit that checks the copy.

The modules, one concept each:

Rules
- ``rules``: the rules file's canonical model (:class:`~datasafe.masking.rules.Rules`), loading, coverage checks
- ``rules_yaml``: YAML with line numbers, so every rules error names the file, the line and the key
- ``rules_schema``: the JSON Schema of the rules file (``masking_rules/schema.json``)
- ``schema_rules``: virtual foreign keys and the rules for the schema's own text (the ``schema`` key)
- ``transformers``: the transformer registry (rule name → class), one module per family, and the column rule
- ``masking_key``: the secret masking key: where it comes from, how strong it must be, its id
- ``errors``: errors of the rules and of values a rule cannot mask
- ``suggest``: a starter rules file listing every column of a snapshot
- ``propose``: ``rules init`` built on a scan: a starter rules file whose every line says why
- ``reference``: the transformer reference of docs/masking.md, generated from the registry

Values
- ``keyed``: the HMAC-SHA256 derivations every masked value comes from
- ``types``: how a column and a cell look to a transformer
- ``fakes``: seeded Faker generators
- ``countries``: country names and codes as databases write them, and their Faker locales
- ``layout``: the layout of a value (its digits or letters left out) for format-keeping rules
- ``digit_dfa``: regular expressions over decimal digits as automata
- ``jsonpath``: a small JSON path language over JSON text
- ``phone_numbers``: valid phone numbers of a region, and the reference reading and drawing of a masked number
- ``phone_fast``: the ``phone`` rule without ``phonenumbers.parse``, with the same results
- ``phone_native``: the ``phone`` rule in C: phonenumbers' metadata as tables
- ``native``: the per-value work in C where it was built, else in Python

Running a masking
- ``plan``: which table gets which treatment, checked against the snapshot's schema
- ``masked_snapshot``: masking a stored snapshot into a new, masked snapshot
- ``pipeline``: streaming a snapshot's chunks through the transformers into the new one
- ``stages``: the reading and the writing of a masked table, each in its own thread
- ``masker``: one table's rows: uniqueness, subsetting, rules that need the whole row
- ``batch``: a block of rows at once (the hot loop)
- ``parallel``: blocks of rows in worker processes
- ``codecs``: each engine's row codec, found by the snapshot's row encoding
- ``preview``: cells as ``mask --dry-run`` shows them
- ``ddl``: masking the schema's own text: comments, defaults, CHECKs, view and function bodies, enum labels
- ``ddl_sql``: schema parts as documents of objects, and the MySQL/MariaDB and SQLite formats
- ``ddl_pg``: pg_dump custom-format archives, read and written without a server

Leak audit
- ``leaks``: the audit of a masking run: do original values turn up in the output?
- ``leaks_items``: the items cut from cells, the same way on both sides
- ``leaks_ledger``: what an audit saw and found, and :class:`~datasafe.masking.leaks_ledger.TableProbe`
- ``leaks_report``: per original column, where its values turned up, and the verdict
- ``leaks_compare``: ``datasafe leaks``: the audit of any masked copy, made by any tool
- ``fingerprints``: Bloom filter fingerprints of the original values
"""
