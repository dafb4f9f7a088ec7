"""People and organisations: names, e-mail addresses, user names, companies, any Faker provider."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, Field, model_validator

from datasafe.masking import keyed
from datasafe.masking.countries import country_locale
from datasafe.masking.errors import RulesError
from datasafe.masking.fakes import FakerSlot, slot, slug, to_text
from datasafe.masking.rules_yaml import did_you_mean
from datasafe.masking.transformers.base import LocaleOptions, Transformer, register, row_cell
from datasafe.masking.types import ColumnInfo, RowView

LocaleT = TypeVar("LocaleT", bound=LocaleOptions)

SAFE_DOMAINS = ("example.com", "example.net", "example.org")  # reserved (RFC 2606): never a real mailbox
_DOMAIN = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                     r"[A-Za-z0-9])?)+")


class CountryOptions(LocaleOptions):
    """Options of transformers that can make each row's value for the country another column names."""

    country_column: str | None = Field(
        None, min_length=1, description="a column of the same row that names the country (ISO code such as `CA` or "
                                        "`CAN`, or name such as `Canada`): each value is made for that country; "
                                        "a country without a Faker locale gets `locale`")


class FakerTransformer(Transformer[LocaleT]):
    """Base of the transformers that call one Faker provider, seeded from the value.

    With a ``country_column`` option (:class:`CountryOptions`), the Faker locale is that of the
    country the row names in that column, so the rule reads its row.
    """

    method: ClassVar[str]

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        self.faker: FakerSlot = slot(self.name, self.options.faker_locale)
        self.digest = keyed.hmac_sha256(key)
        self.country_column: str | None = getattr(self.options, "country_column", None)
        if self.country_column is not None:
            if self.country_column == column.name:
                raise RulesError(f"column {column.name}: country_column cannot name the column itself")
            self.uses_row = True
            self._memo = None  # the output depends on the row's country too

    @classmethod
    def needs_columns(cls, options: BaseModel) -> tuple[str, ...]:
        country = getattr(options, "country_column", None)
        return (country,) if country else ()

    def provider(self) -> str:
        return self.method

    def faker_for(self, row: RowView) -> FakerSlot:
        """The Faker of the row's country (``country_column``), else of the rule's locale."""
        if self.country_column is None:
            return self.faker
        locale = country_locale(row_cell(row, self.country_column))
        return self.faker if locale is None or locale == self.faker.locale else slot(self.name, locale)

    def fake(self, value: str, attempt: int, method: str, faker: FakerSlot | None = None) -> Any:
        """One Faker value for ``value``: from the pool for a first choice, generated for alternatives."""
        return self.fake_from(self.digest(value, attempt), attempt, method, faker or self.faker)

    @staticmethod
    def fake_from(digest: bytes, attempt: int, method: str, faker: FakerSlot) -> Any:
        """:meth:`fake` for the value's ``digest`` (of the value and ``attempt``)."""
        seed = int.from_bytes(digest[:8], "big")
        return faker.pooled(seed, method) if attempt == 0 else faker.call(seed, method)

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        return self.render(self.fake(value, attempt, self.provider(), self.faker_for(row)))

    def render(self, fake: Any) -> str | None:
        """The masked value for a Faker value (before fitting): when it is all of :meth:`mask`."""
        return to_text(fake)

    def _pooled_only(self) -> bool:
        # the first choice is render(pooled value) unless a subclass masks differently
        return type(self).mask is FakerTransformer.mask

    def first_choice(self) -> Callable[[str], str | None]:
        table = self.first_choice_table()
        if table is None:
            return super().first_choice()
        digest, size = self.digest, len(table)
        return self._keep_blanks(lambda value: table[int.from_bytes(digest(value, 0)[:8], "big") % size])

    def first_choice_table(self) -> list[str | None] | None:
        if not self._pooled_only() or self.uses_row:
            return None
        fit, render = self._fit, self.render
        return [fit(render(v)) for v in self.faker.pool(self.provider())]


class GenderOptions(LocaleOptions):
    gender: Literal["any", "female", "male"] = Field("any", description="draw from the female or male "
                                                                         "names only")


@register("first_name")
class FirstName(FakerTransformer[GenderOptions]):
    """A first name from the locale's list (every name equally likely)."""

    Options = GenderOptions
    method = "first_name"
    example = "first_name: first_name"

    def provider(self) -> str:
        return self.method if self.options.gender == "any" else f"{self.method}_{self.options.gender}"


@register("last_name")
class LastName(FakerTransformer[LocaleOptions]):
    """A last name from the locale's list."""

    Options = LocaleOptions
    method = "last_name"
    example = "last_name: {last_name: {locale: de_DE}}"


@register("name")
class Name(FirstName):
    """A full name in the locale's usual form (may include prefixes such as `Dr.`)."""

    method = "name"
    example = "contact_name: name"


@register("company")
class Company(FakerTransformer[LocaleOptions]):
    """A company name."""

    Options = LocaleOptions
    method = "company"
    example = "employer: company"


class EmailOptions(LocaleOptions):
    keep_domain: bool = Field(False, description="keep the part after `@` (it may route to real mail servers); "
                                                 "a value without a valid domain gets a safe one")
    domain: str | None = Field(None, description="use this domain for every address; default: one of "
                                                 "example.com/.net/.org (reserved, never delivered)")
    unique: bool = Field(False, description="append a short keyed suffix (`anna.lee.3f9a2c@...`) so that distinct "
                                            "inputs give distinct addresses: saves retries in large unique columns")

    @model_validator(mode="after")
    def _domain(self) -> EmailOptions:
        if self.domain is not None and not _DOMAIN.fullmatch(self.domain):
            raise ValueError(f"domain {self.domain!r} is not a valid domain name")
        return self


@register("email")
class Email(FakerTransformer[EmailOptions]):
    """A syntactically valid address `first.last@domain`, made of ASCII letters, digits and dots.

    The name comes from the locale's lists (accents folded to ASCII). The domain is a reserved
    example domain unless `domain` or `keep_domain` say otherwise. Short columns shorten the local
    part, never the domain. The output does not depend on the column (a referencing column masks
    alike), so `unique` is an option, not taken from the column's constraints.
    """

    Options = EmailOptions
    method = "email"
    example = "email: {email: {keep_domain: true}}"

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        self._names: tuple[list[str], list[str]] | None = None
        #: the domains an address is drawn from (unless ``keep_domain`` keeps the input's)
        self.domains: tuple[str, ...] = (self.options.domain,) if self.options.domain else SAFE_DOMAINS

    def name_slugs(self) -> tuple[list[str], list[str]]:
        """The pools of first and last names as address parts (built on first use)."""
        if self._names is None:
            self._names = ([slug(to_text(v), ".") for v in self.faker.pool("first_name")],
                           [slug(to_text(v), ".") for v in self.faker.pool("last_name")])
        return self._names

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        digest = self.digest(value, attempt)
        if attempt == 0:
            return self.first_from_digest(value, digest)
        first, last = self.faker.calls(int.from_bytes(digest[:8], "big"), ("first_name", "last_name"))
        return self._address(value, digest, [slug(first, ".")], [slug(last, ".")])

    def first_from_digest(self, value: str, digest: bytes) -> str | None:
        return self._address(value, digest, *self.name_slugs())

    def _address(self, value: str, digest: bytes, firsts: list[str], lasts: list[str]) -> str:
        # a first choice picks its names from the pools by keyed index; an alternative passes one
        # freshly generated name per list
        first = firsts[int.from_bytes(digest[:8], "big") % len(firsts)]
        last = lasts[int.from_bytes(digest[12:20], "big") % len(lasts)]
        local = f"{first}.{last}" if first and last else first or last or "user"
        if self.options.unique:
            local = f"{local}.{digest[8:11].hex()}"
        domains = self.domains
        domain = domains[digest[11] % len(domains)]
        if self.options.keep_domain and "@" in value:
            kept = value.rsplit("@", 1)[1].strip()
            if _DOMAIN.fullmatch(kept):
                domain = kept
        limit = self.column.max_length
        if limit is not None and len(local) + 1 + len(domain) > limit:
            local = local[: max(1, limit - len(domain) - 1)].strip(".") or "u"
        return f"{local}@{domain}"


class UsernameOptions(LocaleOptions):
    unique: bool = Field(False, description="append six keyed digits so that distinct inputs give distinct names")


@register("username")
class Username(FakerTransformer[UsernameOptions]):
    """A login name such as `jsmith` or `mary42`."""

    Options = UsernameOptions
    method = "user_name"
    example = "login: username"

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        digest = self.digest(value, attempt)
        name = to_text(self.faker.call(int.from_bytes(digest[:8], "big"), self.method))
        if self.options.unique:
            name = f"{name}{int.from_bytes(digest[8:12], 'big') % 1_000_000:06d}"
        return name


class FakerOptions(LocaleOptions):
    provider: str = Field(description="the Faker provider method, e.g. `job`, `bothify`, `date_between`")
    args: list[Any] = Field(default_factory=list, description="positional arguments of the provider")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the provider")

    @model_validator(mode="after")
    def _provider(self) -> FakerOptions:
        faker = slot("faker", self.faker_locale)
        if not faker.has_provider(self.provider):
            raise ValueError(f"unknown Faker provider {self.provider!r}"
                             f"{did_you_mean(self.provider, faker.provider_names())}")
        return self


@register("faker")
class FakerProvider(FakerTransformer[FakerOptions]):
    """Any Faker provider by name, with arguments; the result is written as database text.

    Dates come out as ISO dates, datetimes as `YYYY-MM-DD HH:MM:SS`, lists as JSON. Providers
    whose result depends on today's date (relative ranges such as `start_date: -30y`) give the
    same output only on the same day: pass absolute dates for reproducible copies.
    """

    Options = FakerOptions
    kinds = None
    method = "faker"
    example = 'job_title: {faker: {provider: job}}\nvoucher: {faker: {provider: bothify, args: ["??-####"]}}'

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        seed = int.from_bytes(self.digest(value, attempt)[:8], "big")
        return to_text(self.faker.call(seed, self.options.provider, *self.options.args, **self.options.kwargs))
