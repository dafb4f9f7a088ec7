"""``text``: lorem ipsum of the same length as the input."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from faker.providers.lorem.la import Provider as LatinLorem
from pydantic import BaseModel, Field

from datasafe.masking import keyed
from datasafe.masking.transformers.base import Options, Transformer, register
from datasafe.masking.types import ColumnInfo, RowView

WORDS: tuple[str, ...] = tuple(LatinLorem.word_list)
#: characters of lorem ipsum generated once per word list; a masked text is a keyed slice of it
CORPUS_SIZE = 1 << 18


@lru_cache(maxsize=8)
def corpus(words: tuple[str, ...]) -> tuple[str, array[int]]:
    """Sentences of 6 to 13 words from ``words``, and the offsets where its words start.

    The words come from a fixed SHAKE-256 stream, so the text is the same in every run and on
    every Python version; the key only decides where a masked value starts reading it. The text
    ends with a space, so reading on from its start continues it.
    """
    draws = keyed.Draws(hashlib.shake_256(b"datasafe lorem ipsum").digest(4 * CORPUS_SIZE))  # plenty: a draw a word
    parts: list[str] = []
    starts = array("I")
    size = 0
    while size < CORPUS_SIZE:
        count = 6 + draws.below(8)
        for i in range(count):
            word = words[draws.below(len(words))]
            if i == 0:
                word = word[:1].upper() + word[1:]
            if i == count - 1:
                word += "."
            starts.append(size)
            parts.append(word)
            size += len(word) + 1
    return " ".join(parts) + " ", starts


class TextOptions(Options):
    max_length: int | None = Field(None, ge=1, description="never longer than this (the column's maximum "
                                                           "length applies anyway)")
    words: list[str] | None = Field(None, min_length=1, description="draw from these words instead of Latin "
                                                                    "lorem ipsum")


@register("text")
class Text(Transformer[TextOptions]):
    """Lorem ipsum with as many characters as the input (empty stays empty).

    Sentences start with a capital and end with a full stop; line breaks are not kept.
    """

    Options = TextOptions
    kinds = frozenset({"text", "other"})
    example = "notes: text\ncomment: {text: {max_length: 200}}"

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        self.digest = keyed.hmac_sha256(key)
        self.words = tuple(w.strip() for w in self.options.words or () if w.strip()) or WORDS
        self._corpus: tuple[str, array[int]] | None = None

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        return self.first_from_digest(value, self.digest(value, attempt))

    def first_from_digest(self, value: str, digest: bytes) -> str | None:
        length = len(value)
        if self.options.max_length is not None:
            length = min(length, self.options.max_length)
        if length == 0:
            return ""
        text, starts = self.corpus()
        start = starts[int.from_bytes(digest[:8], "big") % len(starts)]
        if length <= 2:
            return text[start:text.index(" ", start)].rstrip(".").lower()[:length].ljust(length, "a")
        piece = text[start:start + length - 1]
        if len(piece) < length - 1:
            piece = (piece + text * (length // len(text) + 1))[:length - 1]
        # leave room for the closing full stop; a cut that falls on a space is padded with letters
        piece = piece.rstrip(" .")
        return piece[:1].upper() + piece[1:] + "a" * (length - 1 - len(piece)) + "."

    def corpus(self) -> tuple[str, array[int]]:
        """The rule's :func:`corpus` (built on first use): the text every masked value is a slice of."""
        if self._corpus is None:
            self._corpus = corpus(self.words)
        return self._corpus
