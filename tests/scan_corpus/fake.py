"""Deterministic fake values for the scan corpus: people, identifiers with valid checksums, blobs.

Everything is made up here, from a seed: Faker names and streets, e-mail addresses at reserved
example domains (RFC 2606: ``example.com``, ``.test``, ``.example``), phone numbers from the
ranges that regulators reserve for fiction (US/CA 555-0100..0199, Ofcom's drama numbers, ARCEP's
``0x 99 00`` block, ACMA's 5550 and 0491 57x ranges), and national ids / IBANs / VAT / card numbers
with valid checksums drawn at random (card numbers on test-card prefixes). City names are real
places (geography, not personal data); no value describes a real person.

``Fake(seed)`` never looks at the clock: dates are offsets from fixed instants, so the same seed
gives the same values on every machine and every day.
"""

from __future__ import annotations

import hashlib
import string
import struct
import unicodedata
import uuid
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from random import Random
from typing import ClassVar

import phonenumbers
from faker import Faker
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.de import idnr as de_idnr
from stdnum.de import vat as de_vat
from stdnum.fr import nir as fr_nir
from stdnum.fr import tva as fr_tva
from stdnum.nl import bsn as nl_bsn
from stdnum.us import ssn as us_ssn

#: the instant "now" of the corpus: every timestamp lies before it
EPOCH = datetime(2024, 6, 30, 12, 0, 0, tzinfo=timezone.utc)

#: Faker locale per country of the people in the corpus, and how often each occurs
COUNTRIES: dict[str, tuple[str, int]] = {
    "US": ("en_US", 36), "GB": ("en_GB", 20), "FR": ("fr_FR", 16), "AU": ("en_AU", 10),
    "CA": ("en_CA", 6), "DE": ("de_DE", 8), "NL": ("nl_NL", 4),
}

#: real cities per country (geography, not personal data)
CITIES: dict[str, list[str]] = {
    "US": ["Springfield", "Portland", "Austin", "Denver", "Boston", "Seattle", "Chicago", "Phoenix", "Dallas",
           "Atlanta", "Madison", "Columbus", "Richmond", "Omaha", "Tucson", "Raleigh", "Boise", "Albany",
           "Savannah", "Fresno", "Tulsa", "Reno", "Buffalo", "Dayton", "Lansing", "Eugene", "Provo"],
    "GB": ["Leeds", "Bristol", "Manchester", "Glasgow", "Cardiff", "Sheffield", "Norwich", "York", "Bath",
           "Brighton", "Exeter", "Leicester", "Aberdeen", "Dundee", "Swansea", "Belfast", "Oxford", "Derby"],
    "FR": ["Lyon", "Marseille", "Toulouse", "Nantes", "Lille", "Rennes", "Bordeaux", "Grenoble", "Dijon",
           "Angers", "Nîmes", "Reims", "Le Havre", "Brest", "Limoges", "Amiens", "Metz", "Perpignan"],
    "AU": ["Brisbane", "Adelaide", "Perth", "Hobart", "Darwin", "Geelong", "Cairns", "Townsville", "Ballarat",
           "Bendigo", "Toowoomba", "Wollongong", "Newcastle", "Launceston"],
    "CA": ["Ottawa", "Calgary", "Edmonton", "Winnipeg", "Halifax", "Victoria", "Regina", "Saskatoon",
           "Kingston", "Moncton", "Kelowna", "Guelph"],
    "DE": ["Leipzig", "Dresden", "Bremen", "Hannover", "Nürnberg", "Freiburg", "Kassel", "Rostock", "Mainz",
           "Augsburg", "Münster", "Bielefeld", "Erfurt", "Potsdam", "Würzburg"],
    "NL": ["Utrecht", "Eindhoven", "Groningen", "Tilburg", "Breda", "Nijmegen", "Haarlem", "Arnhem", "Zwolle",
           "Leiden", "Maastricht", "Delft"],
}

#: regions (state, county, province) per country: what a ``district`` column holds
REGIONS: dict[str, list[str]] = {
    "US": ["Oregon", "Texas", "Colorado", "Ohio", "Virginia", "Nebraska", "Arizona", "Georgia", "Idaho",
           "New York", "Nevada", "Michigan", "Utah", "Wisconsin", "Washington"],
    "GB": ["West Yorkshire", "Greater Manchester", "Kent", "Devon", "Norfolk", "Lothian", "Glamorgan",
           "Antrim", "Oxfordshire", "Leicestershire"],
    "FR": ["Rhône", "Gironde", "Haute-Garonne", "Nord", "Isère", "Bretagne", "Occitanie", "Normandie"],
    "AU": ["Queensland", "Victoria", "Tasmania", "New South Wales", "Western Australia"],
    "CA": ["Ontario", "Alberta", "Manitoba", "Nova Scotia", "British Columbia", "Saskatchewan"],
    "DE": ["Sachsen", "Bayern", "Niedersachsen", "Hessen", "Thüringen", "Brandenburg"],
    "NL": ["Utrecht", "Noord-Brabant", "Groningen", "Gelderland", "Limburg", "Zuid-Holland"],
}

#: (ISO 3166 alpha-2, alpha-3, English name, calling code, currency): reference data, not personal.
#: Several names double as first names (Jordan, Chad, Georgia...): look-alike negatives.
COUNTRY_TABLE: list[tuple[str, str, str, str, str]] = [
    ("AR", "ARG", "Argentina", "+54", "ARS"), ("AU", "AUS", "Australia", "+61", "AUD"),
    ("AT", "AUT", "Austria", "+43", "EUR"), ("BE", "BEL", "Belgium", "+32", "EUR"),
    ("BR", "BRA", "Brazil", "+55", "BRL"), ("CA", "CAN", "Canada", "+1", "CAD"),
    ("TD", "TCD", "Chad", "+235", "XAF"), ("CL", "CHL", "Chile", "+56", "CLP"),
    ("CN", "CHN", "China", "+86", "CNY"), ("CO", "COL", "Colombia", "+57", "COP"),
    ("CZ", "CZE", "Czechia", "+420", "CZK"), ("DK", "DNK", "Denmark", "+45", "DKK"),
    ("EG", "EGY", "Egypt", "+20", "EGP"), ("EE", "EST", "Estonia", "+372", "EUR"),
    ("FI", "FIN", "Finland", "+358", "EUR"), ("FR", "FRA", "France", "+33", "EUR"),
    ("GE", "GEO", "Georgia", "+995", "GEL"), ("DE", "DEU", "Germany", "+49", "EUR"),
    ("GR", "GRC", "Greece", "+30", "EUR"), ("HU", "HUN", "Hungary", "+36", "HUF"),
    ("IS", "ISL", "Iceland", "+354", "ISK"), ("IN", "IND", "India", "+91", "INR"),
    ("IE", "IRL", "Ireland", "+353", "EUR"), ("IT", "ITA", "Italy", "+39", "EUR"),
    ("JM", "JAM", "Jamaica", "+1", "JMD"), ("JP", "JPN", "Japan", "+81", "JPY"),
    ("JO", "JOR", "Jordan", "+962", "JOD"), ("KE", "KEN", "Kenya", "+254", "KES"),
    ("LV", "LVA", "Latvia", "+371", "EUR"), ("LT", "LTU", "Lithuania", "+370", "EUR"),
    ("MX", "MEX", "Mexico", "+52", "MXN"), ("MA", "MAR", "Morocco", "+212", "MAD"),
    ("NL", "NLD", "Netherlands", "+31", "EUR"), ("NZ", "NZL", "New Zealand", "+64", "NZD"),
    ("NO", "NOR", "Norway", "+47", "NOK"), ("PE", "PER", "Peru", "+51", "PEN"),
    ("PL", "POL", "Poland", "+48", "PLN"), ("PT", "PRT", "Portugal", "+351", "EUR"),
    ("RO", "ROU", "Romania", "+40", "RON"), ("SN", "SEN", "Senegal", "+221", "XOF"),
    ("SG", "SGP", "Singapore", "+65", "SGD"), ("ZA", "ZAF", "South Africa", "+27", "ZAR"),
    ("ES", "ESP", "Spain", "+34", "EUR"), ("SE", "SWE", "Sweden", "+46", "SEK"),
    ("CH", "CHE", "Switzerland", "+41", "CHF"), ("TH", "THA", "Thailand", "+66", "THB"),
    ("TR", "TUR", "Türkiye", "+90", "TRY"), ("UG", "UGA", "Uganda", "+256", "UGX"),
    ("GB", "GBR", "United Kingdom", "+44", "GBP"), ("US", "USA", "United States", "+1", "USD"),
    ("UY", "URY", "Uruguay", "+598", "UYU"), ("VN", "VNM", "Viet Nam", "+84", "VND"),
]

#: reserved domains for e-mail addresses (RFC 2606 / RFC 6761); none is a domain the email rule
#: writes (bare example.com/.org/.net), so a masked address can never equal a planted one by chance
EMAIL_DOMAINS = ["home.example.com", "mx.example.org", "users.example.net", "mail.example.com", "post.example.org",
                 "inbox.example.net", "corp.example", "acme.test", "webmail.example"]

#: service accounts: what a ``created_by`` / ``actor`` column of a machine-written table holds
SERVICES = ["billing-svc", "etl-nightly", "api-gateway", "hr-sync", "ldap-import", "scheduler", "crm-connector",
            "search-indexer", "backup-agent", "mailer-worker"]

#: words for product/film/track names and descriptions (no personal data)
ADJECTIVES = ["Amazing", "Brave", "Crimson", "Silent", "Golden", "Frozen", "Wild", "Electric", "Hidden", "Lucky",
              "Velvet", "Rapid", "Cosmic", "Ancient", "Bitter", "Gentle", "Lunar", "Northern", "Savage", "Urban"]
NOUNS = ["Harbor", "Dinosaur", "Orchard", "Voyage", "Empire", "Circus", "Garden", "Machine", "Lighthouse",
         "Canyon", "Festival", "Labyrinth", "Mirror", "Outpost", "Parade", "Reactor", "Sunrise", "Tundra",
         "Volcano", "Whisper"]
PRODUCT_NOUNS = ["Chair", "Lamp", "Kettle", "Backpack", "Notebook", "Headphones", "Mug", "Blanket", "Drill",
                 "Tent", "Keyboard", "Bottle", "Jacket", "Helmet", "Speaker"]
MATERIALS = ["Steel", "Oak", "Bamboo", "Cotton", "Aluminium", "Ceramic", "Wool", "Carbon", "Leather", "Glass"]


@dataclass(frozen=True)
class Person:
    """A made-up person, consistent across their fields."""

    first_name: str
    last_name: str
    country: str  #: ISO alpha-2
    email: str
    phone: str  #: as written in the data (E.164, international or national format)
    phone_e164: str
    birth_date: date
    street: str
    city: str
    postcode: str
    region: str

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def full_address(self) -> str:
        return f"{self.street}, {self.postcode} {self.city}, {self.country}"


def ascii_fold(text: str) -> str:
    """'Grégoire Müller' -> 'Gregoire Muller' (for e-mail local parts and user names)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def luhn_complete(prefix: str) -> str:
    """``prefix`` followed by its Luhn check digit."""
    return prefix + luhn.calc_check_digit(prefix)


class Fake:
    """All fake values of one corpus database, from one seed."""

    def __init__(self, seed: int) -> None:
        self.rng = Random(seed)
        locales = sorted({loc for loc, _ in COUNTRIES.values()})
        self.faker = Faker(locales)
        self.faker.seed_instance(seed)
        self._emails: set[str] = set()
        self._usernames: set[str] = set()
        self._pools: dict[str, dict[str, list[str]]] = {}
        self._countries = list(COUNTRIES)
        self._weights = [w for _, w in COUNTRIES.values()]

    # -- primitives -------------------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def digits(self, n: int) -> str:
        return str(self.rng.randrange(10**n)).zfill(n)

    def hex(self, nbytes: int) -> str:
        return self.rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def timestamp(self, days_back: float = 730, before: datetime = EPOCH) -> datetime:
        """A moment within ``days_back`` days before ``before`` (whole seconds, UTC)."""
        return (before - timedelta(seconds=self.rng.randrange(int(days_back * 86400)))).replace(microsecond=0)

    def day(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randrange((end - start).days + 1))

    def money(self, low: float, high: float) -> str:
        return f"{self.rng.uniform(low, high):.2f}"

    def country(self) -> str:
        return self.rng.choices(self._countries, self._weights)[0]

    # -- people -----------------------------------------------------------------------------------

    def _pool(self, country: str) -> dict[str, list[str]]:
        """Faker's first names, last names and street names of the country's locale, drawn once."""
        pool = self._pools.get(country)
        if pool is None:
            fk = self.faker[COUNTRIES[country][0]]
            pool = {"first": [str(fk.first_name()) for _ in range(400)],
                    "last": [str(fk.last_name()) for _ in range(400)],
                    "street": [str(fk.street_name()) for _ in range(250)]}
            self._pools[country] = pool
        return pool

    def person(self, country: str | None = None) -> Person:
        country = country or self.country()
        pool = self._pool(country)
        first, last = self.rng.choice(pool["first"]), self.rng.choice(pool["last"])
        e164, written = self.phone(country)
        city = self.rng.choice(CITIES[country])
        return Person(first, last, country, self.email(first, last), written, e164,
                      self.birth_date(), self.street(country), city, self.postcode(country),
                      self.rng.choice(REGIONS[country]))

    def email(self, first: str, last: str) -> str:
        """A unique address at a reserved domain, in one of the usual local-part shapes."""
        f, la = ascii_fold(first).lower().replace(" ", ""), ascii_fold(last).lower().replace(" ", "")
        shape = self.rng.randrange(6)
        local = [f"{f}.{la}", f"{f[0]}{la}", f"{f}_{la}", f"{la}.{f}", f"{f}{self.rng.randrange(10, 99)}",
                 f"{f}.{la}{self.rng.randrange(1, 9)}"][shape]
        local = local.replace("'", "") or "user"
        domain = self.rng.choice(EMAIL_DOMAINS)
        address, n = f"{local}@{domain}", 2
        while address in self._emails:
            address, n = f"{local}{n}@{domain}", n + 1
        self._emails.add(address)
        return address if self.rng.random() > 0.08 else address[0].upper() + address[1:]

    def username(self, first: str, last: str) -> str:
        f, la = ascii_fold(first).lower(), ascii_fold(last).lower().replace(" ", "").replace("'", "")
        base = [f"{f[0]}{la}", f"{f}.{la}", f"{f}{la[0]}", f"{la}{self.rng.randrange(1, 99)}"][self.rng.randrange(4)]
        name, n = base[:24], 2
        while name in self._usernames:
            name, n = f"{base[:22]}{n}", n + 1
        self._usernames.add(name)
        return name

    def birth_date(self) -> date:
        return self.day(date(1942, 1, 1), date(2005, 12, 31))

    def street(self, country: str) -> str:
        name = self.rng.choice(self._pool(country)["street"])
        number = self.rng.randrange(1, 400 if country in ("US", "CA", "AU") else 120)
        if country in ("DE", "NL"):
            return f"{name} {number}"
        if country == "US" and self.chance(0.2):
            return f"{number} {name} Apt. {self.rng.randrange(1, 900)}"
        return f"{number} {name}"

    def postcode(self, country: str) -> str:
        fk = self.faker[COUNTRIES[country][0]]
        if country == "NL":
            return f"{self.rng.randrange(1000, 9999)} {self.rng.choice('ABCDEFGHJKLMNPRSTVWXZ')}" \
                   f"{self.rng.choice('ABCDEFGHJKLMNPRSTVWXZ')}"
        if country == "CA":
            code = str(fk.postcode()).replace(" ", "")
            return f"{code[:3]} {code[3:]}"
        return str(fk.postcode())

    # -- phone numbers from the ranges reserved for fiction ---------------------------------------

    _US_AREAS: ClassVar[list[str]] = ["202", "212", "213", "305", "312", "415", "503", "512", "602", "617", "702",
                                      "713", "801", "808", "919", "971"]
    _CA_AREAS: ClassVar[list[str]] = ["403", "416", "514", "604", "613", "902"]
    #: Ofcom's drama ranges (national significant number prefixes, one digit short of complete)
    _GB_DRAMA: ClassVar[list[str]] = ["20 7946 0", "113 496 0", "114 496 0", "116 496 0", "117 496 0", "118 496 0",
                                      "121 496 0", "131 496 0", "141 496 0", "151 496 0", "161 496 0", "191 498 0"]

    def phone(self, country: str) -> tuple[str, str]:
        """(E.164, as written): a number valid for its country and reserved for fiction."""
        rng = self.rng
        if country == "US" or country == "CA":
            area = rng.choice(self._US_AREAS if country == "US" else self._CA_AREAS)
            raw = f"+1{area}55501{rng.randrange(0, 100):02d}"
        elif country == "GB":
            raw = "+44" + rng.choice(self._GB_DRAMA).replace(" ", "") + f"{rng.randrange(0, 1000):03d}"
        elif country == "FR":
            raw = f"+33{rng.randrange(1, 6)}9900{rng.randrange(0, 10000):04d}"
        elif country == "AU":
            raw = (f"+61{rng.choice('2378')}5550{rng.randrange(0, 10000):04d}" if rng.random() < 0.5
                   else f"+614915{rng.randrange(70, 80)}{rng.randrange(0, 1000):03d}")
        else:  # DE, NL: people living abroad keep a foreign number (there is no fiction range at home)
            return self.phone(rng.choice(["GB", "FR", "US"]))
        number = phonenumbers.parse(raw)
        assert phonenumbers.is_valid_number(number), raw
        style = rng.random()
        if style < 0.35:
            written = raw
        elif style < 0.75 or country == "AU":
            written = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        else:
            written = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        return raw, written

    # -- identifiers with valid checksums ---------------------------------------------------------

    def ssn(self, dashes: bool = True) -> str:
        while True:
            area = self.rng.randrange(1, 900)
            if area == 666:
                continue
            value = f"{area:03d}{self.rng.randrange(1, 100):02d}{self.rng.randrange(1, 10000):04d}"
            if us_ssn.is_valid(value):
                return f"{value[:3]}-{value[3:5]}-{value[5:]}" if dashes else value

    def de_idnr(self) -> str:
        while True:
            body = str(self.rng.randrange(1, 10)) + self.digits(9)
            value = body + de_idnr.mod_11_10.calc_check_digit(body)
            if de_idnr.is_valid(value):
                return value

    def fr_nir(self, birth: date) -> str:
        body = (f"{self.rng.choice('12')}{birth.year % 100:02d}{birth.month:02d}{self.rng.randrange(1, 96):02d}"
                f"{self.rng.randrange(1, 990):03d}{self.rng.randrange(1, 999):03d}")
        value = body + fr_nir.calc_check_digits(body)
        assert fr_nir.is_valid(value), value
        return value

    def nl_bsn(self) -> str:
        while True:
            value = str(self.rng.randrange(1, 7)) + self.digits(8)
            if nl_bsn.is_valid(value):
                return value

    def national_id(self, country: str, birth: date) -> str:
        """The country's usual personal number: SSN (US), Steuer-ID (DE), NIR (FR), BSN (NL), else SSN."""
        if country == "DE":
            return self.de_idnr()
        if country == "FR":
            return self.fr_nir(birth)
        if country == "NL":
            return self.nl_bsn()
        return self.ssn()

    #: digits of the BBAN where it is all digits; banks where it starts with a bank code
    _BBAN_DIGITS: ClassVar[dict[str, int]] = {"DE": 18, "FR": 23, "AT": 16}
    _BANKS: ClassVar[dict[str, list[str]]] = {"NL": ["ABNA", "INGB", "RABO", "TRIO", "SNSB"],
                                              "GB": ["NWBK", "BARC", "LOYD", "HBUK", "MIDL"]}

    def iban(self, country: str | None = None, spaced: bool | None = None) -> str:
        country = country or self.rng.choice(["DE", "DE", "FR", "NL", "GB", "BE", "AT", "IT"])
        while True:
            if country in self._BANKS:
                bban = self.rng.choice(self._BANKS[country]) + self.digits(10 if country == "NL" else 14)
            elif country == "BE":  # the account's own check: first ten digits mod 97
                head = self.digits(10)
                bban = head + f"{int(head) % 97 or 97:02d}"
            elif country == "IT":
                bban = self.rng.choice(string.ascii_uppercase) + self.digits(22)
            else:
                bban = self.digits(self._BBAN_DIGITS[country])
            value = country + std_iban.calc_check_digits(country + "00" + bban) + bban
            if std_iban.is_valid(value):
                break
        if spaced is None:
            spaced = self.rng.random() < 0.4
        return str(std_iban.format(value)) if spaced else value

    #: test-card prefixes (Visa, Mastercard, Amex, Discover) and lengths
    _CARD_PREFIXES: ClassVar[list[tuple[str, int]]] = [
        ("424242", 16), ("400000", 16), ("411111", 16), ("401288", 16), ("555555", 16), ("510510", 16),
        ("222300", 16), ("520082", 16), ("378282", 15), ("371449", 15), ("601111", 16)]

    def card_number(self, style: str | None = None) -> str:
        """A Luhn-valid number on a test-card prefix, written plain, spaced or dashed."""
        prefix, length = self.rng.choice(self._CARD_PREFIXES)
        value = luhn_complete(prefix + self.digits(length - len(prefix) - 1))
        style = style or self.rng.choice(["plain", "plain", "spaced", "dashed"])
        if style == "plain":
            return value
        sep = " " if style == "spaced" else "-"
        if length == 15:
            return sep.join([value[:4], value[4:10], value[10:]])
        return sep.join(value[i:i + 4] for i in range(0, 16, 4))

    def vat(self, country: str | None = None) -> str:
        country = country or self.rng.choice(["DE", "FR"])
        if country == "DE":
            while True:
                body = str(self.rng.randrange(1, 10)) + self.digits(7)
                value = body + de_vat.mod_11_10.calc_check_digit(body)
                if de_vat.is_valid(value):
                    return "DE" + value
        siren = luhn_complete(str(self.rng.randrange(1, 10)) + self.digits(7))
        value = f"{(12 + 3 * (int(siren) % 97)) % 97:02d}" + siren
        assert fr_tva.is_valid("FR" + value), value
        return "FR" + value

    # -- network, secrets, checksums --------------------------------------------------------------

    def ipv4(self) -> str:
        return str(self.faker["en_US"].ipv4_public())

    def ipv6(self) -> str:
        groups = [f"{self.rng.randrange(0x2001, 0x2a10):x}"] + [f"{self.rng.getrandbits(16):x}" for _ in range(7)]
        return ":".join(groups)

    def ip(self, v6_share: float = 0.15) -> str:
        return self.ipv6() if self.chance(v6_share) else self.ipv4()

    _B64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

    def password_hash(self) -> str:
        """bcrypt (most rows) or argon2id, shaped like the real encodings."""
        if self.chance(0.85):
            cost = self.rng.choice(["10", "12", "12"])
            return f"$2b${cost}$" + "".join(self.rng.choice(self._B64) for _ in range(53))
        salt = "".join(self.rng.choice(self._B64[2:]) for _ in range(22))
        digest = "".join(self.rng.choice(self._B64[2:]) for _ in range(43))
        return f"$argon2id$v=19$m=65536,t=3,p=4${salt}${digest}"

    def sha256(self) -> str:
        return hashlib.sha256(self.rng.getrandbits(256).to_bytes(32, "big")).hexdigest()

    # -- codes that look like something else -----------------------------------------------------

    def sku(self) -> str:
        """A 12-16 digit article number: about one in ten passes the Luhn check by chance."""
        return self.digits(self.rng.choice([12, 13, 14, 16]))

    def order_number(self) -> str:
        return f"{self.rng.choice('45')}{self.digits(15)}"

    # -- text -------------------------------------------------------------------------------------

    def title(self) -> str:
        return f"{self.rng.choice(ADJECTIVES)} {self.rng.choice(NOUNS)}"

    def product_name(self) -> str:
        return f"{self.rng.choice(ADJECTIVES)} {self.rng.choice(MATERIALS)} {self.rng.choice(PRODUCT_NOUNS)}"

    def film_description(self) -> str:
        """Pagila style: 'A Epic Drama of a Feminist And a Mad Scientist who must ...'."""
        genre = self.rng.choice(["Drama", "Documentary", "Saga", "Story", "Reflection", "Panorama", "Yarn"])
        who = ["Feminist", "Mad Scientist", "Astronaut", "Lumberjack", "Dentist", "Robot", "Monkey", "Pioneer",
               "Sumo Wrestler", "Car", "Waitress", "Hunter", "Crocodile", "Explorer", "Technical Writer"]
        verb = self.rng.choice(["Battle", "Outrace", "Chase", "Meet", "Confront", "Discover", "Redeem", "Sink"])
        where = self.rng.choice(["in The Canadian Rockies", "in A Shark Tank", "in Ancient India", "at A Fair",
                                 "in A Baloon", "in Soviet Georgia", "in The Gulf of Mexico", "in A Monastery"])
        adj = self.rng.choice(["Epic", "Astounding", "Fateful", "Thoughtful", "Insightful", "Brilliant", "Taut"])
        return (f"A {adj} {genre} of a {self.rng.choice(who)} And a {self.rng.choice(who)} who must {verb} "
                f"a {self.rng.choice(who)} {where}")

    def product_description(self) -> str:
        return " ".join(str(s) for s in self.faker["en_US"].sentences(self.rng.randrange(1, 4))) + \
            f" Weight {self.rng.randrange(80, 9000)} g, {self.rng.choice(MATERIALS).lower()} finish."

    def ticket_text(self, person: Person, *, pii_share: float) -> tuple[str, bool]:
        """A support message; with probability ``pii_share`` it embeds the customer's e-mail or phone
        (or a name + phone of someone else). Returns (text, embeds personal data)."""
        rng = self.rng
        order = f"#{rng.randrange(100000, 999999)}"
        plain = [
            f"My order {order} has not arrived yet. Could you check the status?",
            f"The {self.product_name().lower()} I received is damaged, the box was open. Order {order}.",
            "How do I change the delivery slot for next week? The app only shows Tuesday.",
            f"Refund for order {order} still pending after {rng.randrange(3, 30)} days.",
            "Thanks for the quick help yesterday, everything works now.",
            f"Invoice for order {order} shows the wrong VAT rate ({rng.choice([7, 19, 20, 21])} %).",
            "Please close my ticket, the issue resolved itself.",
        ]
        text = rng.choice(plain)
        if not self.chance(pii_share):
            return text + f" Ticket opened via {rng.choice(['web', 'app', 'phone', 'chat'])}.", False
        kind = rng.randrange(4)
        if kind == 0:
            text += f" You can reach me at {person.email}."
        elif kind == 1:
            text += f" Please call me back on {person.phone}, best after 5 pm."
        elif kind == 2:
            text += f" Contact: {person.full_name}, {person.phone} or {person.email}"
        else:
            other = self.person()
            text += f" Deliver to my neighbour {other.full_name} instead ({other.phone})."
        return text, True

    # -- blobs ------------------------------------------------------------------------------------

    def png(self, width: int = 24, height: int = 24) -> bytes:
        """A real PNG: random-coloured noise (a stand-in for a portrait photo)."""
        base = bytes(self.rng.randrange(128) for _ in range(3)) * width
        raw = b"".join(b"\x00" + bytes(b + (n & 0x7F) for b, n in zip(base, self.rng.randbytes(3 * width), strict=True))
                       for _ in range(height))

        def chunk(tag: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))

    def jpeg(self, size: int = 1800) -> bytes:
        """JFIF-framed bytes (SOI, APP0 'JFIF', entropy-like payload, EOI)."""
        app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x48\x00\x48\x00\x00"
        body = self.rng.randbytes(size).replace(b"\xff", b"\xfe")
        return b"\xff\xd8" + app0 + b"\xff\xdb\x00\x43\x00" + body + b"\xff\xd9"

    def photo(self) -> bytes:
        return self.png(self.rng.choice([16, 24, 32]), self.rng.choice([16, 24, 32])) if self.chance(0.6) \
            else self.jpeg(self.rng.randrange(900, 2600))

    def pdf(self, person: Person) -> bytes:
        """A one-page PDF (a signed contract) naming the person."""
        text = f"Employment contract - {ascii_fold(person.full_name)} - {person.email}"
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                   b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                   b"/Resources << /Font << /F1 5 0 R >> >> >>",
                   b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
                   b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
        out, offsets = b"%PDF-1.4\n", []
        for i, obj in enumerate(objects, 1):
            offsets.append(len(out))
            out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
        out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
        out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
        return out

    def gzip_csv(self, rows: int = 20) -> bytes:
        """A gzip'd CSV export of stock levels (binary, no personal data)."""
        import gzip

        lines = ["sku,warehouse,qty"] + [f"{self.sku()},{self.rng.choice(['BER1', 'LYS2', 'MAN3'])},"
                                         f"{self.rng.randrange(0, 5000)}" for _ in range(rows)]
        return gzip.compress("\n".join(lines).encode(), mtime=0)
