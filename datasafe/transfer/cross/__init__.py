"""Restores into a target of another engine (PostgreSQL, MySQL/MariaDB, SQLite, every direction).

Imported only when a restore's target engine differs from its snapshot's: SQLAlchemy (whose
type system and dialect DDL compilers build the target's schema) is loaded then, never at
start-up. Modules:

* ``types``: a source column type as a neutral type, and the SQLAlchemy type it becomes per target
* ``values``: a stored field into the target's value, per column type; PostgreSQL array literals
* ``columns``: a block of stored rows into the target's values, a column at a time
* ``schema``: defaults, indexes, identity columns, enum labels and untranslatable objects of a schema part
* ``ddl``: the target's tables, indexes and foreign keys as SQLAlchemy objects, compiled for the target
* ``targets``: each target kind's checks, bulk load, transaction and clean-up
* ``restore``: the plan (checks only) and the run of a cross-engine restore
"""
