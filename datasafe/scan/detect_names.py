"""What a column's name suggests, and the reference lists that values are checked against.

A column's name is a hint, not a verdict: ``genre.name`` holds no person's name, ``phone_extension``
no phone number, and a ``data`` column may hold e-mail addresses. :func:`name_hints` therefore
only says which categories a name makes *plausible* and how strongly; :mod:`datasafe.scan.detect`
lets the sampled values confirm or veto each hint.

The reference lists (first names, last names, cities, street words) come from Faker's locale
providers, which ship with the package: no download, nothing leaves the machine. They are loaded
once, on first use, into frozensets of case-folded (and accent-stripped) words.
"""

from __future__ import annotations

import functools
import importlib
import re
import unicodedata
from collections.abc import Iterable

#: Faker locales whose person and address providers feed the lists
LOCALES = ("en_US", "en_GB", "en_IE", "en_NZ", "de_DE", "de_AT", "de_CH", "fr_FR", "es_ES", "it_IT", "nl_NL",
           "pt_BR", "pt_PT", "pl_PL", "sv_SE", "da_DK", "fi_FI", "cs_CZ")

#: name strength of a plain hint, and of a weak one (a bare ``name`` outside a table of people)
HINT = 0.5
WEAK_HINT = 0.25



def word_set(words: str) -> frozenset[str]:
    """The words of ``words`` (split at white space) as a frozenset."""
    return frozenset(words.split())


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_N = r"(?:_?n(?:o|um|umber|r|br))?"  # an optional number suffix: _no, _num, _number, nr

# (category, pattern on the normalised name). Every pattern is tried: a name may hint at several
# categories (``address`` at street and address; ``contact`` at e-mail, phone and a name).
_PATTERNS: tuple[tuple[str, str], ...] = (
    ("email", r"e_?mails?|(?:^|_)(?:mail|mail_?addr(?:ess)?|courriel|correo)(?:_|$)"),
    ("ip_address", r"(?:^|_)ip(?:v[46])?(?:_?addr(?:ess)?)?(?:_|$)|(?:remote|client|host|source|src)_?addr(?:ess)?"),
    ("password_hash", r"passw(?:or)?d|passwd|(?:^|_)(?:pwd|pw|pass|passphrase|secret|token|api_?key|private_?key|"
                      r"salt|otp|totp|mfa_?secret|pin|pin_?hash|hash_?pass|credential|credentials)(?:_|$)"),
    ("first_name", r"(?:^|_)(?:first|given|fore|christian|middle)_?names?(?:_|$)|^f_?name$|vorname|prenom"),
    ("last_name", r"(?:^|_)(?:last|sur|family|maiden|birth)_?names?(?:_|$)|^l_?name$|surname|nachname|"
                  r"(?:^|_)(?:apellidos?|cognome|achternaam)(?:_|$)"),
    ("username", r"user_?name|(?:^|_)(?:login|logon|signin)(?:_?name|_?id)?$|(?:^|_)(?:handle|nick|nick_?name|"
                 r"screen_?name|account_?name|sam_?account_?name)$"),
    ("phone", r"phone|mobile|(?:^|_)(?:tel|telephone|telefon|telefono|telefoon|fax|cell|cellphone|msisdn|gsm|"
              r"handy|portable|sms)" + _N + r"(?:_|$)"),
    ("national_id", r"(?:^|_)(?:ssn|sin|nin|nino|bsn|nir|insee|dni|nie|nif|cpf|cpr|curp|pesel|pps|aadhaar|svnr|ahv|"
                    r"avs|hetu|tfn|sofi|steuer_?id|idnr|tax_?id|tin|tax_?number|tax_?code|codice_?fiscale|"
                    r"fiscal_?code|personnummer|person_?nr|personal_?(?:id|number|code|no)|"
                    r"national_?(?:id|insurance|number|identity|identification)" + _N + r"|"
                    r"social_?security" + _N + r"|social_?insurance" + _N + r"|insurance_?number|"
                    r"passport" + _N + r"|id_?card" + _N + r"|identity(?:_?(?:card|number|document))?|"
                    r"driver_?s?_?licen[cs]e" + _N + r"|licen[cs]e_?n(?:o|um|umber)|citizen_?id|resident_?id)"
                    r"(?:_|$)"),
    ("iban", r"(?:^|_)(?:iban|bank_?account" + _N + r"|account_?n(?:o|um|umber)|rekening(?:nummer)?|"
             r"kontonummer|konto)(?:_|$)"),
    ("vat", r"(?:^|_)(?:vat|ust_?id|ustid|tva|btw|iva|mwst|tax_?id|vat_?(?:id|code|reg)" + _N + r"|piva|"
            r"partita_?iva)(?:_|$)"),
    ("card_number", r"(?:^|_)(?:card|credit_?card|debit_?card|payment_?card|cc|cc_?card)" + _N + r"$|"
                    r"(?:^|_)(?:pan|ccn|cc_?num(?:ber)?|card_?pan)$|creditcard|cardnumber"),
    ("date_of_birth", r"birth|(?:^|_)(?:dob|born|bday|geburt\w*|naissance|nacimiento|nascita|geboorte\w*)(?:_|$)"),
    ("street", r"(?:^|_)(?:street|streets|str|strasse|straße|rue|calle|street_?name|street_?address|house_?n(?:o|um|"
               r"umber|r)|address_?line_?\d?|addr_?line_?\d?|address_?\d|addr_?\d|line_?[12])(?:_|$)|^addr(?:ess)?_?\d$"),
    ("address", r"(?:^|_)(?:address|addresses|addr|adresse|adres|direccion|indirizzo|anschrift|endereco)(?:_|$)"),
    ("city", r"(?:^|_)(?:city|cities|town|ort|stadt|ville|ciudad|citta|cidade|plaats|woonplaats|gemeente|locality|"
             r"municipality|commune|birth_?place|place_?of_?birth|hometown|home_?town)(?:_|$)"),
    ("postcode", r"(?:^|_)(?:zip|zip_?code|zipcode|post_?code|postal_?code|postcode|plz|postleitzahl|code_?postal|"
                 r"codigo_?postal|postnummer|postnr|eircode|post_?nr|pin_?code)(?:_|$)"),
    ("free_text", r"(?:^|_)(?:notes?|comments?|description|desc|remarks?|bio|biography|memo|message|messages|body|"
                  r"text|content|details|summary|feedback|review|reason|observations?|annotation|about|story|"
                  r"question|answer|reply|transcript|remark|instructions?)(?:_|$)"),
)
_COMPILED = tuple((c, re.compile(p)) for c, p in _PATTERNS)

#: words after a matched pattern that make the name about something else (``email_verified_at``,
#: ``phone_extension``, ``city_count``, ``card_last4``, ``password_changed_at``)
_KILL_AFTER = word_set("""id ids uuid guid code codes count counts cnt type types kind status state flag flags
    verified verification confirmed confirmation valid validated enabled disabled opt optin optout consent
    prefix suffix extension ext length len format fmt domain provider template sent at on time ts timestamp
    updated created changed modified last4 last four brand network country region lang language locale policy
    visibility total limit attempts tries retries expires expiry expiration required requirements rule rules
    strength score quality label mask fingerprint algo algorithm scheme version salt_rounds rounds cost iterations
    hint question reminder lookup key keys index idx fk ref sequence seq order sort rank public channel
    preference preferences settings setting optional visible hidden bounce bounced template_id""")
#: words before a match that make the name a count or a flag (``num_emails``, ``has_phone``)
_KILL_BEFORE = word_set("num n count total has is allow allowed use uses send max min mac wallet web url server "
                         "host node contract crypto btc eth ether bitcoin")
#: ... except for the date of birth, which only these disqualify (``birth_place`` is a city)
_KILL_DOB = word_set("place city country town location name names registry certificate weight order rank")

#: a table (singular, lower case) whose bare ``name`` column names a person
PERSON_TABLES = word_set("""customer client user person people employee staff member contact patient student
    teacher driver passenger guest account subscriber applicant candidate tenant owner buyer seller recipient sender
    beneficiary lead prospect traveler traveller visitor attendee participant player author speaker worker
    volunteer donor resident citizen holder cardholder signatory user_profile profile""")
#: a word before ``_name`` that names a person (``display_name``, ``card_holder_name``)
PERSON_ROLES = PERSON_TABLES | word_set("""full display real legal contact shipping billing holder card_holder
    cardholder account_holder emergency_contact parent guardian spouse father mother next_of_kin kin
    recipient sender manager supervisor doctor physician nurse agent rep representative signer""")


#: words of a column name that say nothing about what it holds (``value``, ``data``, ``field_3``)
_GENERIC = word_set("""col column field value values val data datum attr attribute attributes prop property properties
    item entry text str string info misc extra custom other raw input output content contents var param arg x y z
    a b c d e f g h i j k l m n o p q r s t u v w""")


def uninformative(column: str) -> bool:
    """The name says nothing about the values (``value``, ``field_3``, ``c``): only then may a list
    of single first or last names alone mark a column; ``brand`` or ``pet_name`` say what they hold."""
    tokens = [t for t in normalise(column).split("_") if t]
    return all(t in _GENERIC or t.isdigit() for t in tokens)


def normalise(name: str) -> str:
    """``BillingPostalCode`` -> ``billing_postal_code``; ``E-Mail Address`` -> ``e_mail_address``."""
    return _NON_ALNUM.sub("_", _CAMEL.sub("_", name.strip()).lower()).strip("_")


def _table_word(table: str) -> str:
    word = normalise(table.rsplit(".", 1)[-1])
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def name_hints(table: str, column: str) -> dict[str, float]:
    """The categories a column's name suggests, each with a strength (0..1).

    ``table`` may be schema-qualified; it matters only for a bare ``name`` column (``customer.name``
    is a person's name, ``genre.name`` most likely not, so that hint is weak).
    """
    name = normalise(column)
    if not name:
        return {}
    tokens = name.split("_")
    hints: dict[str, float] = {}
    for category, pattern in _COMPILED:
        for m in pattern.finditer(name):
            before = name[:m.start()].strip("_").split("_") if m.start() else []
            after = name[m.end():].strip("_").split("_") if m.end() < len(name) else []
            kill_after = _KILL_DOB if category == "date_of_birth" else _KILL_AFTER
            if any(t in kill_after for t in after) or any(t in _KILL_BEFORE for t in before if t):
                continue
            hints[category] = HINT
            break
    if "email" in hints or "ip_address" in hints or "username" in hints:
        hints.pop("address", None)
        hints.pop("street", None)
    if "address" in hints:
        hints.setdefault("street", HINT)
    if "date_of_birth" in hints and ("last_name" in hints or "city" in hints):  # birth_name, birth_place
        hints.pop("date_of_birth")
    _person_hints(table, tokens, hints)
    return hints


def _person_hints(table: str, tokens: list[str], hints: dict[str, float]) -> None:
    if any(c in hints for c in ("first_name", "last_name", "username")):
        return
    last, head = tokens[-1], tokens[:-1]
    if last in ("holder", "cardholder", "fullname"):
        hints["person_name"] = HINT
    elif last in ("name", "names"):
        if not head:
            hints["person_name"] = HINT if _table_word(table) in PERSON_TABLES else WEAK_HINT
        elif "_".join(head) in PERSON_ROLES or head[-1] in PERSON_ROLES:
            hints["person_name"] = HINT
    elif last == "contact" or tokens[-2:] == ["contact", "person"]:
        for category in ("person_name", "email", "phone"):
            hints.setdefault(category, WEAK_HINT)


# -- reference lists -----------------------------------------------------------------------------

def fold(word: str) -> str:
    """Case-folded, accents stripped: ``Grégoire`` and ``GREGOIRE`` meet at ``gregoire``."""
    word = word.casefold()
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _words(values: Iterable[object]) -> set[str]:
    out: set[str] = set()
    for v in values:
        if isinstance(v, str) and v.strip():
            w = v.strip()
            out.add(w.casefold())
            out.add(fold(w))
    return out


def _provider(kind: str, locale: str) -> type | None:
    try:
        module = importlib.import_module(f"faker.providers.{kind}.{locale}")
    except ImportError:
        return None
    provider = getattr(module, "Provider", None)
    return provider if isinstance(provider, type) else None


def _attributes(provider: type, prefixes: tuple[str, ...], suffixes: tuple[str, ...] = ()) -> list[object]:
    out: list[object] = []
    for klass in provider.__mro__:
        if not klass.__module__.startswith("faker.providers."):
            continue
        for key, value in vars(klass).items():
            if (key.startswith(prefixes) or (suffixes and key.endswith(suffixes))) and not callable(value) \
                    and isinstance(value, (tuple, list, dict, set, frozenset)):
                out.extend(value)
    return out


@functools.lru_cache(maxsize=1)
def person_names() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names) of every locale of :data:`LOCALES`, folded (see :func:`fold`)."""
    first: set[str] = set()
    last: set[str] = set()
    for locale in LOCALES:
        provider = _provider("person", locale)
        if provider is None:
            continue
        first |= _words(_attributes(provider, ("first_name",)))
        lasts = _words(_attributes(provider, ("last_name",), ("_last_names",)))
        last |= lasts
        for name in list(lasts):  # "van der berg": also "berg"; "o'brien": also "obrien"
            parts = name.replace("'", " ").split()
            if len(parts) > 1:
                last.add(parts[-1])
    return frozenset(first), frozenset(last)


@functools.lru_cache(maxsize=1)
def city_names() -> frozenset[str]:
    """City names of the locales whose address provider lists real places (folded)."""
    out: set[str] = set()
    for locale in LOCALES:
        provider = _provider("address", locale)
        if provider is not None:
            out |= _words(_attributes(provider, ("cities",)))
    return frozenset(out)


#: street words of languages whose Faker provider does not list them (or lists few)
_STREET_WORDS = word_set("""street st road rd avenue ave av drive dr lane ln court ct boulevard blvd way place pl
    terrace tce crescent cres close square sq parkway pkwy circle cir trail trl highway hwy row mews grove
    gardens hill park walk rise green vale pike plaza loop path alley point ridge heights crossing esplanade
    embankment quay wharf
    strasse straße str gasse platz ring weg allee damm ufer chaussee steig pfad markt
    rue chemin avenue boulevard bd impasse allée allee place quai cours route voie passage square
    calle avenida av avda paseo plaza carrer camino ronda travesia carretera
    via viale piazza corso largo vicolo strada contrada borgo
    rua travessa praça praca estrada alameda rodovia largo
    straat laan plein gracht kade dijk singel steeg dreef hof pad weg baan
    gatan vägen vagen gränd grand torget stigen gade vej alle katu tie kuja polku
    ulica ul aleja al plac osiedle os""")
@functools.lru_cache(maxsize=1)
def street_words() -> frozenset[str]:
    """Street types as whole words, in many languages (folded; ``st`` and ``st.`` alike)."""
    words = _words(_STREET_WORDS)
    for locale in LOCALES:
        provider = _provider("address", locale)
        if provider is not None:
            words |= _words(_attributes(provider, ("street_suffix", "street_prefix")))
    return frozenset(w.rstrip(".") for w in words if w.rstrip("."))

# -- person names, streets, places: the shapes of values ------------------------------------------

_NAME_TOKEN = re.compile(r"[^\W\d_](?:[^\W\d_]|['’.-](?=[^\W\d_]))*\.?")
_TITLES = word_set("mr mrs ms miss mx dr prof sir dame herr frau mme mlle m sr sra srta dott ing")
_SUFFIXES = word_set("jr sr ii iii iv phd md esq")
_PARTICLES = word_set("van von der den de del della di da das do dos du la le ten ter te zu bin ibn al el mac")
#: words of organisations and things, never of a person's name
_NOT_PERSON = word_set("""inc ltd llc plc gmbh ag sa sas sarl bv nv srl spa co corp corporation company group and
    und et y e of the for & sons bros associates partners holding holdings limited foundation trust bank club team
    association university school hospital hotel restaurant store shop services solutions""")
#: an address's second line (apartment, suite, PO box), alone or after the street
_UNITS = (r"(?:apt|apartment|suite|ste|unit|flat|floor|fl|room|rm|bldg|building|piso|étage|etage|app|appt|whg|"
          r"wohnung|bus|bte|studio|piano|appartamento|puerta|escalera|esc)\.?\s*#?|#\s*")
UNIT = re.compile(r"(?i)(?:" + _UNITS + r"|(?:po box|p\.\s?o\.\s?box|postfach|bp)\s*)[\w-]{1,8}")
_TRAILING_UNIT = re.compile(r"(?i)(?:\s*,\s*|\s+)(?:" + _UNITS + r")[\w-]{1,8}"
                            r"(?:\s+(?:" + _UNITS + r")[\w-]{1,8})?\s*$")
_HOUSE_FIRST = re.compile(r"(\d{1,5}[A-Za-z]?(?:[-/]\d{1,5}[A-Za-z]?)?),?\s+(\D{2,60})")
_HOUSE_LAST = re.compile(r"(\D{2,60}?),?\s+(\d{1,5}(?:\s?[A-Za-z])?(?:\s?[-/]\s?\d{1,5}[A-Za-z]?)?)")
#: compounds end in these (Hauptstraße, Kerkstraat, Storgatan, Bahnhofsweg), folded
_STREET_SUFFIXES = ("strasse", "str", "gasse", "weg", "allee", "platz", "ring", "damm", "ufer", "straat", "laan",
                    "plein", "gracht", "kade", "dijk", "singel", "steeg", "dreef", "boulevard", "hof", "pad", "gatan",
                    "vagen", "grand", "torget", "gade", "vej", "katu", "kuja")
_WORD = re.compile(r"[^\W\d_][\w'’.-]*")
#: a postcode inside an address line (UK, Canada, the Netherlands, 4-5 digits with an optional extension)
POSTCODE_IN = re.compile(r"(?<![\w-])(?:[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d|\d{4} ?[A-Z]{2}|"
                         r"\d{4,5}(?:-\d{3,4})?)(?![\w-])")
_PLACE = re.compile(r"(?:\d{4,5}\s+)?[^\W\d_][^\W\d_'’.-]*(?:[ '’.-]+[^\W\d_]+){0,4}\.?")
_PLACE_PARTICLES = word_set("de du des la le les sur sous am an der im bei upon on in en di del y et and aan")
_LINES = re.compile(r"[\n;]+")


def person_name(value: str) -> str | None:
    """``full`` (first and last name in the lists), ``full_weak`` (one of them), ``first``, ``last``,
    ``both`` (a single word that is a first and a last name), ``shape`` (looks like a name, in no
    list), or None."""
    if len(value) > 80:
        return None
    comma = value.split(",")
    if len(comma) == 2:  # "Last, First"
        last_part, first_part = _name_tokens(comma[0]), _name_tokens(comma[1])
        if last_part is None or first_part is None or not last_part or not first_part:
            return None
        tokens = [*first_part, *last_part]
        split = len(first_part)
    elif len(comma) == 1:
        found = _name_tokens(value)
        if not found:
            return None
        tokens, split = found, 1
    else:
        return None
    first, last = person_names()
    if len(tokens) == 1:
        w = tokens[0]
        in_first, in_last = _member(w, first), _member(w, last)
        return "both" if in_first and in_last else "first" if in_first else "last" if in_last else "shape"
    if len(tokens) > 4:
        return None
    given = tokens[0]
    family = tokens[split:] if len(comma) == 2 else tokens[1:]
    if len(comma) == 1:  # "Ludwig van Beethoven": the family name starts at the first particle
        family = tokens[next((i for i in range(1, len(tokens)) if tokens[i] in _PARTICLES), len(tokens) - 1):]
    family_name = " ".join(family)
    ok_first = _member(given, first)
    ok_last = _member(family_name, last) or _member(family[-1], last)
    if ok_first and ok_last:
        return "full"
    return "full_weak" if ok_first or ok_last else "shape"


def _member(word: str, names: frozenset[str]) -> bool:
    if word in names:
        return True
    folded = fold(word)
    if folded in names:
        return True
    return "-" in word and all(part in names for part in folded.split("-") if part)


def _name_tokens(text: str) -> list[str] | None:
    out: list[str] = []
    for raw in text.split():
        m = _NAME_TOKEN.fullmatch(raw)
        if m is None:
            return None
        word = raw.casefold().rstrip(".")
        if word in _NOT_PERSON:
            return None
        if (word in _TITLES and not out) or word in _SUFFIXES:
            continue
        if raw[0].islower() and word not in _PARTICLES:
            return None
        out.append(word)
    return out


def street(value: str) -> str | None:
    """``street`` (house number and a street word), ``street_weak`` (house number and words),
    ``unit`` (an address's second line: apartment, suite), or None."""
    if UNIT.fullmatch(value):
        return "unit"
    value = _TRAILING_UNIT.sub("", value)
    m = _HOUSE_FIRST.fullmatch(value)
    name = m.group(2) if m else None
    if name is None:
        m = _HOUSE_LAST.fullmatch(value)
        name = m.group(1) if m else None
    if name is None:
        return None
    words = [fold(w).rstrip(".") for w in _WORD.findall(name)]
    if not words or len(words) > 7 or len(words) < len(name.split()) - 1:
        return None
    known = street_words()
    if any(w in known or w.endswith(_STREET_SUFFIXES) for w in words):
        return "street"
    return "street_weak"


def address(value: str) -> bool:
    """A whole postal address: a street line (or an apartment line) followed by a postcode or a town,
    on lines of their own or between commas."""
    lines = [line.strip(" ,") for line in _LINES.split(value) if line.strip(" ,")]
    if len(lines) < 2:
        lines = [part.strip() for part in value.split(",") if part.strip()]
    if not 2 <= len(lines) <= 7:
        return False
    for i in range(min(2, len(lines) - 1)):
        for j in (0, 1):  # "13, chemin Lemaître" and "Via Roma, 12" are one street line cut by a comma
            if j and (i + 2 >= len(lines) or not (lines[i].isdigit() or lines[i + 1][:1].isdigit())):
                continue
            kind = street(", ".join(lines[i:i + j + 1]))
            rest = lines[i + j + 1:]
            if kind is not None and (any(POSTCODE_IN.search(p) for p in rest) or
                                     (kind == "street" and any(place(p) for p in rest))):
                return True
    return False


def address_kinds(value: str) -> list[str]:
    """``street`` / ``street_weak`` / ``unit`` (see :func:`street`) and ``address`` (see :func:`address`)."""
    if len(value) > 120:
        return []
    kind = street(value) if "\n" not in value else None
    out = [kind] if kind else []
    if ("\n" in value or "," in value) and address(value):
        out.append("address")
    return out


def place(value: str) -> bool:
    """Shaped like a place name: up to five capitalised words (particles allowed), no digits."""
    if not _PLACE.fullmatch(value) or len(value) > 60:
        return False
    words = value.replace("-", " ").split()
    return all(w[:1].isupper() or w.isdigit() or w.casefold() in _PLACE_PARTICLES for w in words)


def in_city_list(value: str) -> bool:
    return fold(value) in city_names()


# -- postal codes -----------------------------------------------------------------------------------
_POSTCODE_ALNUM = re.compile(
    r"(?:[A-Z]{1,2}-)?(?:[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d|\d{4} ?[A-Z]{2}|\d{2}-\d{3}|"
    r"\d{4}-\d{3}|\d{5}-\d{3}|\d{5}-\d{4}|\d{3}-\d{4}|\d{3} \d{2})")
_EIRCODE = re.compile(r"[AC-FHKNPRTV-Y]\d[\dW] ?[AC-FHKNPRTV-Y\d]{4}")
_UK_POSTCODE = re.compile(r"([A-Z]{1,2})\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2}")
_UK_AREAS = word_set("""AB AL B BA BB BD BH BL BN BR BS BT CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT DY E
    EC EH EN EX FK FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA LD LE LL LN LS LU M ME MK ML N
    NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA SE SG SK SL SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS
    TW UB W WA WC WD WF WN WR WS WV YO ZE""")
_CA_POSTCODE = re.compile(r"[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d")
_NL_POSTCODE = re.compile(r"[1-9]\d{3} ?(?!SA|SD|SS)[A-Z]{2}")
_POSTCODE_NUM = re.compile(r"(?:[A-Z]{1,2}-)?\d{4,6}")


def postcode_kinds(code: str) -> list[str]:
    """What an upper-case value is as a postal code: ``postcode_alnum`` (the layout of some country's
    codes), plus ``postcode_alpha`` for a UK code of a real postcode area, a Canadian one with the
    letters Canada Post uses or a Dutch one (codes that a column may hold whatever its name says);
    ``postcode_num`` for plain 4-6 digits or an Eircode (these need the column name)."""
    if _POSTCODE_ALNUM.fullmatch(code):
        m = _UK_POSTCODE.fullmatch(code)
        alpha = m.group(1) in _UK_AREAS if m else bool(_CA_POSTCODE.fullmatch(code) or _NL_POSTCODE.fullmatch(code))
        return ["postcode_alnum", "postcode_alpha"] if alpha else ["postcode_alnum"]
    return ["postcode_num"] if _POSTCODE_NUM.fullmatch(code) or _EIRCODE.fullmatch(code) else []
