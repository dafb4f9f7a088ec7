"""Moving rows between a database and a repository: the mechanisms the commands use.

No policy, locking or notification here (that is :mod:`datasafe.commands`):

- ``backup``: take a snapshot of a source into a repository (validate, read, read back, commit).
- ``restore``: restore options, restore plans (validated, nothing changed) and running them.
- ``cross``: restores into a target of another engine (imported only for those: SQLAlchemy).
- ``verify``: read a stored snapshot back and record the result; the listing and provenance checks.
- ``compare``: the deep check: restore into a scratch database and compare content digests.
"""
