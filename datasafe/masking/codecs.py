"""Row codecs as masking uses them: each engine's codec, found by the snapshot's row encoding.

A codec splits a chunk's raw rows into fields and puts them back, decoding only the fields it is
asked for. The seam (:class:`RowCodec`, :class:`TabText`) is :mod:`datasafe.engines.codec`; each
engine declares its own codec in its ``SPEC``, and :data:`CODECS` is read from the engine registry.
"""

from __future__ import annotations

from datasafe.engines.codec import Cell, RowCodec, RowFunc, TabText
from datasafe.engines.mysql.codec import MysqlTsv
from datasafe.engines.postgres.codec import PgCopyText
from datasafe.engines.registry import codec_for, codecs
from datasafe.engines.sqlite.codec import JsonLines

#: row encoding -> codec class, for every registered engine
CODECS = codecs()

__all__ = ["CODECS", "Cell", "JsonLines", "MysqlTsv", "PgCopyText", "RowCodec", "RowFunc", "TabText", "codec_for"]
