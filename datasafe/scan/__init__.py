"""PII discovery: which columns, JSON paths and schema texts of a snapshot or database hold personal data.

- :mod:`datasafe.scan.api`: ``scan_snapshot`` and ``scan_url``, one pass over samples and schema text.
- :mod:`datasafe.scan.model`: categories, findings and the report (what ``datasafe scan --json`` prints).
- :mod:`datasafe.scan.detect`: detectors on column names and on sampled values, weighed together.
- :mod:`datasafe.scan.detect_names`: what a column's name suggests, and the reference lists.
- :mod:`datasafe.scan.detect_values`: what each sampled value looks like, counted over a column.
- :mod:`datasafe.scan.embedded`: personal data embedded in longer text (comments, bodies, notes).
- :mod:`datasafe.scan.sample`: bounded, stratified samples of a snapshot's or a live database's rows.
- :mod:`datasafe.scan.schema_text`: the schema's own text per object, from a snapshot or a live database.
- :mod:`datasafe.scan.derived`: columns derived from others (tsvector, generated, trigger-maintained, copies).
"""
