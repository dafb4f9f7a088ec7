"""``text``: lorem ipsum of the same length as the input."""

from __future__ import annotations

from faker.providers.lorem.la import Provider as LatinLorem
from pydantic import Field

from datasafe.masking import keyed
from datasafe.masking.transformers.base import Options, Transformer, register
from datasafe.masking.types import RowView

WORDS: tuple[str, ...] = tuple(LatinLorem.word_list)


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

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        length = len(value)
        if self.options.max_length is not None:
            length = min(length, self.options.max_length)
        if length == 0:
            return ""
        rng = keyed.keyed_random(self.key, value, attempt)
        words = self.options.words or WORDS
        out: list[str] = []
        size = -1
        sentence = 0
        while size < length:
            word = rng.choice(words)
            if sentence == 0:
                word = word[:1].upper() + word[1:]
            sentence += 1
            if sentence >= 6 + rng.randrange(8):
                word += "."
                sentence = 0
            out.append(word)
            size += len(word) + 1
        if length <= 2:
            return out[0].lower()[:length].ljust(length, "a")
        # leave room for the closing full stop; a cut that falls on a space is padded with letters
        text = " ".join(out)[: length - 1].rstrip(" .")
        return text + "a" * (length - 1 - len(text)) + "."
