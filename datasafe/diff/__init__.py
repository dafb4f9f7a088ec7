"""What changed between two snapshots: tables, rows, structure and schema objects.

- ``snapshots``: :func:`~datasafe.diff.snapshots.diff`, the comparison of two snapshots' manifests and schemas
- ``schema_objects``: a snapshot's schema parts decoded into named objects (tables, indexes, grants...)
"""
