"""Countries as a database writes them (``CA``, ``CAN``, ``Canada``, ``Deutschland``), and their Faker locales.

Rules with ``country_column`` make each row's value for the country that another column of the
row names. :func:`country_code` reads such a cell: an ISO 3166 alpha-2 or alpha-3 code, or the
English or native name of a country that Faker has a locale for (case, accents, dots and a
leading "the" do not matter). :func:`country_locale` is the Faker locale of a country: the first
of Faker's locales for it in alphabetical order (``CA`` → ``en_CA``, ``CH`` → ``de_CH``), with a
few exceptions where that would not be the country's usual language.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from faker.config import AVAILABLE_LOCALES

from datasafe.masking.fakes import ascii_fold

#: alpha-2 → (alpha-3, names...): the countries that Faker has a locale for
_COUNTRIES: dict[str, tuple[str, ...]] = {
    "AE": ("ARE", "United Arab Emirates", "UAE", "الإمارات"),
    "AL": ("ALB", "Albania", "Shqipëria", "Shqipëri"),
    "AM": ("ARM", "Armenia", "Հայաստան"),
    "AR": ("ARG", "Argentina"),
    "AT": ("AUT", "Austria", "Österreich"),
    "AU": ("AUS", "Australia"),
    "AZ": ("AZE", "Azerbaijan", "Azərbaycan"),
    "BA": ("BIH", "Bosnia and Herzegovina", "Bosnia", "Bosna i Hercegovina"),
    "BD": ("BGD", "Bangladesh", "বাংলাদেশ"),
    "BE": ("BEL", "Belgium", "Belgique", "België", "Belgien"),
    "BG": ("BGR", "Bulgaria", "България"),
    "BH": ("BHR", "Bahrain", "البحرين"),
    "BR": ("BRA", "Brazil", "Brasil"),
    "CA": ("CAN", "Canada"),
    "CH": ("CHE", "Switzerland", "Schweiz", "Suisse", "Svizzera"),
    "CL": ("CHL", "Chile"),
    "CN": ("CHN", "China", "People's Republic of China", "PRC", "中国"),
    "CO": ("COL", "Colombia"),
    "CY": ("CYP", "Cyprus", "Κύπρος"),
    "CZ": ("CZE", "Czech Republic", "Czechia", "Česko", "Česká republika"),
    "DE": ("DEU", "Germany", "Deutschland"),
    "DK": ("DNK", "Denmark", "Danmark"),
    "DZ": ("DZA", "Algeria", "Algérie", "الجزائر"),
    "EE": ("EST", "Estonia", "Eesti"),
    "EG": ("EGY", "Egypt", "مصر"),
    "ES": ("ESP", "Spain", "España"),
    "ET": ("ETH", "Ethiopia", "ኢትዮጵያ"),
    "FI": ("FIN", "Finland", "Suomi"),
    "FR": ("FRA", "France"),
    "GB": ("GBR", "United Kingdom", "UK", "Great Britain", "Britain", "England", "Scotland", "Wales",
           "Northern Ireland", "United Kingdom of Great Britain and Northern Ireland"),
    "GE": ("GEO", "Georgia", "საქართველო"),
    "GH": ("GHA", "Ghana"),
    "GR": ("GRC", "Greece", "Ελλάδα", "Hellas"),
    "HR": ("HRV", "Croatia", "Hrvatska"),
    "HU": ("HUN", "Hungary", "Magyarország"),
    "ID": ("IDN", "Indonesia"),
    "IE": ("IRL", "Ireland", "Republic of Ireland", "Éire"),
    "IL": ("ISR", "Israel", "ישראל"),
    "IN": ("IND", "India", "Bharat", "भारत"),
    "IR": ("IRN", "Iran", "ایران"),
    "IS": ("ISL", "Iceland", "Ísland"),
    "IT": ("ITA", "Italy", "Italia"),
    "JO": ("JOR", "Jordan", "الأردن"),
    "JP": ("JPN", "Japan", "日本", "Nippon", "Nihon"),
    "KE": ("KEN", "Kenya"),
    "KR": ("KOR", "South Korea", "Korea", "Republic of Korea", "대한민국", "한국"),
    "LI": ("LIE", "Liechtenstein"),
    "LK": ("LKA", "Sri Lanka", "ශ්‍රී ලංකාව"),
    "LT": ("LTU", "Lithuania", "Lietuva"),
    "LU": ("LUX", "Luxembourg", "Luxemburg", "Lëtzebuerg"),
    "LV": ("LVA", "Latvia", "Latvija"),
    "MK": ("MKD", "North Macedonia", "Macedonia", "Северна Македонија"),
    "MS": ("MSR", "Montserrat"),
    "MT": ("MLT", "Malta"),
    "MX": ("MEX", "Mexico", "México"),
    "NG": ("NGA", "Nigeria"),
    "NL": ("NLD", "Netherlands", "Nederland", "Holland", "The Netherlands"),
    "NO": ("NOR", "Norway", "Norge", "Noreg"),
    "NP": ("NPL", "Nepal", "नेपाल"),
    "NZ": ("NZL", "New Zealand", "Aotearoa"),
    "PH": ("PHL", "Philippines", "Pilipinas"),
    "PK": ("PAK", "Pakistan", "پاکستان"),
    "PL": ("POL", "Poland", "Polska"),
    "PS": ("PSE", "Palestine", "فلسطين"),
    "PT": ("PRT", "Portugal"),
    "RO": ("ROU", "Romania", "România"),
    "RU": ("RUS", "Russia", "Russian Federation", "Россия"),
    "SA": ("SAU", "Saudi Arabia", "السعودية"),
    "SE": ("SWE", "Sweden", "Sverige"),
    "SI": ("SVN", "Slovenia", "Slovenija"),
    "SK": ("SVK", "Slovakia", "Slovensko"),
    "TH": ("THA", "Thailand", "ประเทศไทย", "ไทย"),
    "TR": ("TUR", "Turkey", "Türkiye"),
    "TW": ("TWN", "Taiwan", "臺灣", "台灣"),
    "UA": ("UKR", "Ukraine", "Україна"),
    "US": ("USA", "United States", "United States of America", "US of A", "America", "U S A", "U S"),
    "UZ": ("UZB", "Uzbekistan", "Oʻzbekiston"),
    "VE": ("VEN", "Venezuela"),
    "VN": ("VNM", "Vietnam", "Viet Nam", "Việt Nam"),
    "ZA": ("ZAF", "South Africa", "Suid-Afrika"),
}

#: countries whose first Faker locale in alphabetical order is not the usual one
_LOCALE_EXCEPTIONS = {"TH": "th_TH"}
#: region parts of Faker locales that are not countries
_NOT_COUNTRIES = {"AA", "QC"}
_SPACES = re.compile(r"[\s.]+")


def _normal(text: str) -> str:
    words = _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold().replace("’", "'")).strip()
    return words.removeprefix("the ")


@cache
def _names() -> dict[str, str]:
    names: dict[str, str] = {}
    for code, (alpha3, *spelled) in _COUNTRIES.items():
        for name in (code, alpha3, *spelled):
            for key in (_normal(name), _normal(ascii_fold(name))):
                if key:
                    names.setdefault(key, code)
    for code in locales():
        names.setdefault(code.casefold(), code)
    return names


@cache
def locales() -> dict[str, str]:
    """alpha-2 code → Faker locale, for every country Faker has a locale for."""
    found: dict[str, str] = {}
    for locale in sorted(AVAILABLE_LOCALES):
        region = locale.partition("_")[2]
        if len(region) == 2 and region.isupper() and region not in _NOT_COUNTRIES:
            found.setdefault(region, locale)
    found.update((code, locale) for code, locale in _LOCALE_EXCEPTIONS.items() if locale in AVAILABLE_LOCALES)
    return found


def country_code(cell: str | None, known: frozenset[str] = frozenset()) -> str | None:
    """The ISO 3166 alpha-2 code of a country as a cell names it, or None when it names none we know.

    ``known`` adds alpha-2 codes accepted as they are (the phone regions, for ``phone``).
    """
    if not cell:
        return None
    key = _normal(cell)
    code = _names().get(key)
    if code is None and len(key) == 2 and key.upper() in known:
        code = key.upper()
    if code is None:
        folded = _normal(ascii_fold(cell))
        code = _names().get(folded) if folded else None
    return code


def country_locale(cell: str | None) -> str | None:
    """The Faker locale of the country a cell names (see the module documentation), or None."""
    code = country_code(cell)
    return locales().get(code) if code is not None else None
