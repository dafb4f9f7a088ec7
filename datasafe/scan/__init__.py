"""PII discovery: which columns, JSON paths and schema texts of a snapshot or database hold personal data.

- :mod:`datasafe.scan.model`: categories, findings and the report (what ``datasafe scan --json`` prints).
- :mod:`datasafe.scan.detect`: detectors on column names and on sampled values.
- :mod:`datasafe.scan.sample`: bounded, stratified samples of a snapshot's or a live database's rows.
- :mod:`datasafe.scan.schema_text`: the schema's own text (comments, defaults, checks, bodies) per object,
  from a snapshot or a live database; :mod:`datasafe.scan.schema_sql` takes it out of SQL definitions,
  with the lexer of :mod:`datasafe.scan.sql_tokens`.
- :mod:`datasafe.scan.derived`: columns derived from others (tsvector, generated, trigger-maintained, copies).
"""
