"""Normalization: one pure function per attribute kind.

Every attribute declared in `mdm.entities` has a *kind*; `NORMALIZERS[kind]` turns one raw
source value into a `Normalized`: the canonical display value that survivorship and export use,
and the matching keys that candidate search and duplicate detection compare. A value that cannot
be normalized is never guessed at: it comes back with ``value=None`` and a human ``error``, so the
load can report it and keep the rest of the row.

Contract of every normalizer: ``normalize(raw, record, attribute=None) -> Normalized``.

* ``raw`` is one scalar (str, int, float, Decimal, bool, date, datetime or None); dicts and
  lists are rejected by the caller before normalization.
* ``record`` is the whole raw source row, for kinds that depend on a sibling column: ``phone``
  reads ``country`` for its dialling region, ``name`` reads ``kind`` to decide whether a legal
  form suffix may be stripped.
* ``attribute`` is the declaring `mdm.entities.Attribute`, for kinds whose behaviour depends on
  the declaration: ``choice`` validates against ``attribute.choices``; ``person_name``,
  ``address`` and ``code`` name their key ``<attribute name>_key``. `normalizer_for` binds it,
  which gives the plain ``(raw, record)`` `Normalizer` shape.

Empty input (None, "" or whitespace only) is not an error: value None, no keys, no error.

The module is pure: no Django, no database, no network. The public suffix list is the copy
bundled with `publicsuffixlist`; country and currency tables come from `pycountry` and are
built once on first use. `normalize_record` runs for every row of 100,000-row loads, so the hot
paths use precompiled patterns and cached lookup tables.
"""

from __future__ import annotations

import datetime
import functools
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol

import phonenumbers
from cleanco import prepare_default_terms
from cleanco.non_nfkd_map import NON_NFKD_MAP

from mdm import identifiers
from mdm.entities import (
    COUNTING_DIGITS,
    NO_VALUE,
    PLACEHOLDER_DIGITS,
    PLACEHOLDER_KINDS,
    PLACEHOLDERS,
)

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

    from mdm.entities import Attribute, EntityType

__all__ = [
    "CHOICE_SYNONYMS",
    "CITY_ALIASES",
    "COUNTRY_ALIASES",
    "CURRENCY_SIGNS",
    "NORMALIZERS",
    "KindNormalizer",
    "Normalized",
    "NormalizedRecord",
    "Normalizer",
    "country_code",
    "currency_code",
    "e164_phone",
    "normalize_record",
    "normalizer_for",
    "registrable_domain",
]


@dataclass(frozen=True, slots=True)
class Normalized:
    """One normalized value.

    `value` is the canonical display value (JSON-serializable) or None when the input was empty
    or invalid; `keys` holds only non-empty matching keys; `error` explains why a non-empty
    input could not be normalized.
    """

    value: str | int | None
    keys: dict[str, str]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class NormalizedRecord:
    """A whole source row after normalization.

    `values` maps attribute name to canonical value for attributes that were present, non-empty
    and valid; `keys` merges the matching keys of all attributes; `invalid` maps attribute name
    to ``{"raw": <original value as str>, "reason": <error>}``.
    """

    values: dict[str, Any]
    keys: dict[str, str]
    invalid: dict[str, dict[str, str]]


Normalizer = Callable[[Any, Mapping[str, Any]], Normalized]


class KindNormalizer(Protocol):
    """What `NORMALIZERS` holds: a `Normalizer` that also accepts the declaring attribute."""

    def __call__(
        self, raw: Any, record: Mapping[str, Any], /, attribute: Attribute | None = None
    ) -> Normalized: ...


def _empty() -> Normalized:
    return Normalized(None, {})


def _invalid(reason: str) -> Normalized:
    return Normalized(None, {}, reason)


# --------------------------------------------------------------------------- text primitives

_DROPPED_MARKS = re.compile(r"[.'\u2018\u2019\u02bc`\u00b4]")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")
# Letters that NFKD does not decompose (ø, ł, đ ...), from cleanco's table, plus ligatures.
_LETTER_FOLDS = str.maketrans(
    {
        **{letter.casefold(): ascii.casefold() for letter, ascii in NON_NFKD_MAP.items()},
        "æ": "ae",
        "œ": "oe",
        "þ": "th",
        "ð": "d",
        "ı": "i",
    }
)


def _text(raw: Any) -> str:
    """`raw` as a whitespace-collapsed string; integral floats lose their ``.0`` (spreadsheets)."""
    if isinstance(raw, str):
        text = raw
    elif raw is None:
        return ""
    elif isinstance(raw, float) and raw.is_integer():
        text = str(int(raw))
    elif isinstance(raw, datetime.date):
        text = raw.isoformat()
    else:
        text = str(raw)
    return " ".join(text.split())


def _ascii_fold(text: str) -> str:
    """Case-folded text with accents removed (ß → ss, ø → o, é → e); other scripts are kept."""
    text = text.casefold()
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKD", text.translate(_LETTER_FOLDS))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def _fold(text: str) -> str:
    """The shared matching form: ascii-folded, dots and apostrophes dropped ("P.O." → "po",
    "O'Brien" → "obrien"), other punctuation as a word break, whitespace collapsed."""
    text = _PUNCTUATION.sub(" ", _DROPPED_MARKS.sub("", _ascii_fold(text)))
    return " ".join(text.split())


# --------------------------------------------------------------------------------- text, code


def normalize_text(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """Free text: whitespace collapsed. No matching key."""
    text = _text(raw)
    return Normalized(text, {}) if text else _empty()


def normalize_code(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """Identifiers such as SKU or contract number: value as written (whitespace collapsed), key
    ``<attribute>_key`` upper-case alphanumerics so "ab-12 3" and "AB123" match."""
    text = _text(raw)
    if not text:
        return _empty()
    key = _NON_ALNUM.sub("", text).upper()
    return Normalized(text, {_key_name(attribute, "code"): key} if key else {})


def _key_name(attribute: Attribute | None, kind: str) -> str:
    return f"{attribute.name if attribute is not None else kind}_key"


# ---------------------------------------------------------------------------------- choice

# Synonyms are applied only when their target is one of the attribute's declared choices.
# "inactive" is deliberately absent: it could mean suspended, expired or cancelled.
CHOICE_SYNONYMS: dict[str, str] = {
    "org": "organization",
    "organisation": "organization",
    "company": "organization",
    "business": "organization",
    "corporate": "organization",
    "individual": "person",
    "private": "person",
    "natural person": "person",
    "canceled": "cancelled",
    "terminated": "cancelled",
}


def normalize_choice(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """One of the attribute's declared choices, lower-case; unambiguous synonyms accepted.

    Without an attribute (or with no declared choices) any value passes, lower-cased.
    """
    text = _text(raw)
    if not text:
        return _empty()
    choice = text.lower()
    choices = attribute.choices if attribute is not None else ()
    if choices and choice not in choices:
        synonym = CHOICE_SYNONYMS.get(choice)
        if synonym not in choices:
            return _invalid(f"not one of: {', '.join(choices)}")
        choice = synonym
    return Normalized(choice, {})


# ------------------------------------------------------------------------------------ names

# Tokens cleanco lists that are trading-name words rather than legal forms here.
_NOT_LEGAL_FORMS = {("uk",)}
_LEGAL_FORM_CANONICAL = {
    "incorporated": "inc",
    "corporation": "corp",
    "limited": "ltd",
    "company": "co",
    "and co": "co",
    "and company": "co",
    "unlimited": "unltd",
}


@functools.cache
def _legal_forms() -> dict[str, tuple[tuple[list[str], str], ...]]:
    """cleanco's legal-form terms as folded token lists with their canonical form, indexed by
    last token and longest first, so "pty ltd" wins over "ltd".

    Same term table as `cleanco.basename`, but looked up by the name's last token instead of
    scanning all ~320 terms per name (basename costs ~60 µs, too slow for bulk loads).
    """
    forms: dict[tuple[str, ...], str] = {}
    for _, parts in prepare_default_terms():
        tokens = tuple(_fold(" ".join(parts).replace("&", " and ")).split())
        if tokens and tokens not in _NOT_LEGAL_FORMS:
            joined = " ".join(tokens)
            forms.setdefault(tokens, _LEGAL_FORM_CANONICAL.get(joined, joined))
    by_last_token: dict[str, list[tuple[list[str], str]]] = {}
    for tokens, canonical in sorted(forms.items(), key=lambda form: -len(form[0])):
        by_last_token.setdefault(tokens[-1], []).append((list(tokens), canonical))
    return {last: tuple(candidates) for last, candidates in by_last_token.items()}


def _split_legal_form(tokens: list[str]) -> tuple[list[str], str]:
    """Strip trailing legal-form terms ("co ltd" too), never the whole name."""
    forms = _legal_forms()
    stripped: list[str] = []
    while len(tokens) > 1 and (candidates := forms.get(tokens[-1])):
        for form_tokens, canonical in candidates:
            size = len(form_tokens)
            if size < len(tokens) and tokens[-size:] == form_tokens:
                stripped.insert(0, canonical)
                tokens = tokens[:-size]
                break
        else:
            break
    return tokens, " ".join(stripped)


def _is_person(record: Mapping[str, Any]) -> bool:
    kind = _text(record.get("kind")).lower()
    return CHOICE_SYNONYMS.get(kind, kind) == "person"


def normalize_name(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """A customer name, organization or person (the record's ``kind``; missing = organization).

    Keys: ``name_key`` is the folded name with '&' read as "and"; for organizations the legal
    form suffix is stripped from it and, canonicalized ("Incorporated" → "inc"), kept as
    ``legal_form``, and a leading "The" is dropped (one system writes "The Ivy Table", the
    other "Ivy Table"). So "ACME Inc.", "The Acme Company" and "acme" share ``name_key``
    "acme".
    """
    text = _text(raw)
    if not text:
        return _empty()
    tokens = _fold(text.replace("&", " and ")).split()
    legal_form = ""
    if not _is_person(record):
        tokens, legal_form = _split_legal_form(tokens)
        if len(tokens) > 1 and tokens[0] == "the":
            tokens = tokens[1:]
    keys = {}
    if tokens:
        keys["name_key"] = " ".join(tokens)
    if legal_form:
        keys["legal_form"] = legal_form
    return Normalized(text, keys)


def normalize_person_name(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """Given or family name: value as written, key ``<attribute>_key`` folded ("José" → "jose")."""
    text = _text(raw)
    if not text:
        return _empty()
    key = _fold(text)
    return Normalized(text, {_key_name(attribute, "person_name"): key} if key else {})


# ---------------------------------------------------------------------------------- address

_ADDRESS_WORDS = {
    "street": "st",
    "strasse": "str",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "blv": "blvd",
    "drive": "dr",
    "lane": "ln",
    "court": "ct",
    "place": "pl",
    "square": "sq",
    "highway": "hwy",
    "parkway": "pkwy",
    "terrace": "ter",
    "suite": "ste",
    "apartment": "apt",
    "building": "bldg",
    "floor": "fl",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}


_STRASSE_COMPOUND = re.compile(r"(?<=\w)strasse\b")  # Hauptstraße → hauptstr
# Words (after abbreviation) that start the unit within a building: what follows is detail.
_UNIT_WORDS = frozenset({"ste", "apt", "unit", "fl", "flat", "bldg", "room", "rm"})
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)")
_PARENTHETICAL = re.compile(r"\([^()]*\)")


def _street_part(text: str) -> str:
    """`text` without what says where in the building ("Suite 252", "#281", "2nd Floor", "(in
    the Parker Hotel)", ", Castro Center"): the part before the first comma when it holds a
    number and another word and does not itself start with a unit ("Unit 5, 12 Main St" is
    kept whole); then up to a unit word that follows at least two words."""
    if "(" in text:
        text = _PARENTHETICAL.sub(" ", text)
    head, comma, _ = text.partition(",")
    if comma and any(ch.isdigit() for ch in head):
        words = _fold(head).split()
        if len(words) >= 2 and _ADDRESS_WORDS.get(words[0], words[0]) not in _UNIT_WORDS:
            text = head
    head, number, _ = text.partition("#")  # "12 Main St #5B"
    if number and len(head.split()) >= 2:
        text = head
    return text


def normalize_address(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """An address line: value as written, key ``<attribute>_key`` folded with street-type and
    direction words abbreviated ("12 North Main Street" and "12 N. Main St" match), and without
    the unit within the building (`_street_part`): two systems' copies of one address differ by
    a suite, a floor or a building name one of them leaves out ("5330 N. Sahara Ave" /
    "5330 North Sahara Avenue, Suite 252")."""
    text = _text(raw)
    if not text:
        return _empty()
    folded = _fold(_street_part(text))
    if "strasse" in folded:
        folded = _STRASSE_COMPOUND.sub("str", folded)
    tokens = [_ADDRESS_WORDS.get(token, token) for token in folded.split()]
    for at, token in enumerate(tokens):
        if token in _UNIT_WORDS and at >= 2:
            if token == "fl" and _ORDINAL.fullmatch(tokens[at - 1]) and at >= 3:
                at -= 1  # "2nd fl"
            tokens = tokens[:at]
            break
    key = " ".join(tokens)
    return Normalized(text, {_key_name(attribute, "address"): key} if key else {})


_CITY_WORDS = {
    "st": "saint",
    "ste": "sainte",
    "n": "north",
    "s": "south",
    "e": "east",
    "w": "west",
    "ft": "fort",
    "mt": "mount",
}
# What people write for a few big cities instead of the name ("NYC", "L.A.", "Vegas"), and
# the long forms that name no other city ("New York City"); keys are folded city keys.
CITY_ALIASES: dict[str, str] = {
    "nyc": "new york",
    "ny": "new york",
    "new york city": "new york",
    "la": "los angeles",
    "sf": "san francisco",
    "san fran": "san francisco",
    "vegas": "las vegas",
    "dc": "washington",
    "washington dc": "washington",
    "philly": "philadelphia",
    "nola": "new orleans",
}


@functools.lru_cache(maxsize=65536)
def _city_key(text: str) -> str:
    key = " ".join(_CITY_WORDS.get(token, token) for token in _fold(text).split())
    return CITY_ALIASES.get(key, key)


def normalize_city(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """A city: value as written, ``city_key`` folded with "St."/"Ste" read as "saint"/"sainte",
    "W."/"Ft."/"Mt." as "west"/"fort"/"mount", and a big city's common alias as its name
    (`CITY_ALIASES`: "NYC", "New York City" → "new york"; "L.A." → "los angeles"), so two
    systems' spellings of one place agree."""
    text = _text(raw)
    if not text:
        return _empty()
    key = _city_key(text)
    return Normalized(text, {"city_key": key} if key else {})


def normalize_postal_code(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """A postal code: value upper-case ("sw1a 1aa" → "SW1A 1AA"), ``postal_code_key`` upper
    alphanumerics only ("SW1A1AA")."""
    text = _text(raw).upper()
    if not text:
        return _empty()
    key = _NON_ALNUM.sub("", text)
    return Normalized(text, {"postal_code_key": key} if key else {})


# ---------------------------------------------------------------------------------- country

# Names people write that pycountry does not know (it has "Czechia", "Russian Federation" ...).
COUNTRY_ALIASES: dict[str, str] = {
    "USA": "US",
    "U.S.A.": "US",
    "U.S.": "US",
    "United States of America": "US",
    "America": "US",
    "UK": "GB",
    "U.K.": "GB",
    "Great Britain": "GB",
    "Britain": "GB",
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    "Deutschland": "DE",
    "Holland": "NL",
    "Nederland": "NL",
    "South Korea": "KR",
    "Korea": "KR",
    "Republic of Korea": "KR",
    "North Korea": "KP",
    "Russia": "RU",
    "Czech Republic": "CZ",
    "Ivory Coast": "CI",
    "Schweiz": "CH",
    "Suisse": "CH",
    "Svizzera": "CH",
    "España": "ES",
    "Österreich": "AT",
    "Italia": "IT",
    "Brasil": "BR",
    "Turkey": "TR",
    "Türkiye": "TR",
    "Vietnam": "VN",
    "Macedonia": "MK",
    "Burma": "MM",
    "Swaziland": "SZ",
    "Cape Verde": "CV",
    "UAE": "AE",
    "Vatican": "VA",
    "Vatican City": "VA",
    "Palestine": "PS",
}


def _country_forms(name: str) -> list[str]:
    """Folded spellings of a pycountry name: as is, inverted ("Korea, Republic of" → "republic
    of korea"), without a parenthetical ("Holy See (Vatican City State)") and without "the"."""
    forms = [name]
    if "(" in name:
        forms.append(re.sub(r"\s*\(.*?\)", "", name))
    if ", " in name:
        head, _, tail = name.partition(", ")
        forms.append(f"{tail} {head}")
    folded = [_fold(form) for form in forms]
    folded += [form[4:] for form in folded if form.startswith("the ")]
    return folded


@functools.cache
def _country_index() -> dict[str, str]:
    import pycountry

    index: dict[str, str] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        index[code.casefold()] = code
        index[country.alpha_3.casefold()] = code
        index[country.numeric] = code
        index.setdefault(str(int(country.numeric)), code)
        for attribute in ("name", "official_name", "common_name"):
            name = getattr(country, attribute, None)
            if name:
                for form in _country_forms(name):
                    index.setdefault(form, code)
    for alias, code in COUNTRY_ALIASES.items():
        index.setdefault(_fold(alias), code)
    return index


@functools.lru_cache(maxsize=4096)
def country_code(text: str) -> str | None:
    """ISO 3166-1 alpha-2 for a code (alpha-2, alpha-3, numeric) or name, else None.

    Cached on the text as written: country columns repeat a handful of spellings.
    """
    folded = _fold(text)
    index = _country_index()
    code = index.get(folded)
    if code is None and folded.startswith("the "):
        code = index.get(folded[4:])
    return code


def normalize_country(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """A country as ISO 3166-1 alpha-2 ("Deutschland", "DEU", "276" → "DE"); key ``country``."""
    text = _text(raw)
    if not text:
        return _empty()
    code = country_code(text)
    if code is None:
        return _invalid(f"unknown country: {text!r}")
    return Normalized(code, {"country": code})


# ------------------------------------------------------------------------------------- date

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_ISO_DATE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)?)?",
    re.IGNORECASE,
)
_YEAR_FIRST = re.compile(r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})")
_DOTTED_DAY_FIRST = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DAY_MONTH_AMBIGUOUS = re.compile(r"(\d{1,2})([/-])(\d{1,2})\2(\d{4})")
_DAY_MONTH_NAME = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\.? ([a-z]+)\.?,? (\d{4})", re.IGNORECASE)
_MONTH_NAME_DAY = re.compile(r"([a-z]+)\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})", re.IGNORECASE)
_YEARS = range(1800, 2201)


def _date_parts(text: str) -> tuple[int, int, int] | str | None:
    """(year, month, day) as written, an error reason, or None when no format fits."""
    if match := _ISO_DATE.fullmatch(text) or _YEAR_FIRST.fullmatch(text):
        return int(match[1]), int(match[2]), int(match[3])
    if match := _DOTTED_DAY_FIRST.fullmatch(text):
        return int(match[3]), int(match[2]), int(match[1])
    if match := _COMPACT_DATE.fullmatch(text):
        return int(match[1]), int(match[2]), int(match[3])
    if match := _DAY_MONTH_AMBIGUOUS.fullmatch(text):
        first, second, year = int(match[1]), int(match[3]), int(match[4])
        if first > 12 or first == second:
            return year, second, first
        if second > 12:
            return year, first, second
        return f"ambiguous date: {text!r} (use YYYY-MM-DD)"
    if match := _DAY_MONTH_NAME.fullmatch(text):
        month = _MONTHS.get(match[2].lower())
        return (int(match[3]), month, int(match[1])) if month else None
    if match := _MONTH_NAME_DAY.fullmatch(text):
        month = _MONTHS.get(match[1].lower())
        return (int(match[3]), month, int(match[2])) if month else None
    return None


def normalize_date(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """A calendar date as ISO "YYYY-MM-DD"; no key.

    Accepts date/datetime objects, ISO dates and datetimes, YYYY/MM/DD, DD.MM.YYYY, YYYYMMDD and
    English month names. "a/b/YYYY" is read day-first or month-first only when one reading is
    impossible (a part above 12); otherwise it is rejected as ambiguous rather than guessed.
    Years outside 1800..2200 are rejected as typos.
    """
    if isinstance(raw, datetime.date):
        day = raw.date() if isinstance(raw, datetime.datetime) else raw
        if day.year not in _YEARS:
            return _invalid(f"year outside 1800..2200: {day.isoformat()!r}")
        return Normalized(day.isoformat(), {})
    text = _text(raw)
    if not text:
        return _empty()
    parts = _date_parts(text)
    if isinstance(parts, str):
        return _invalid(parts)
    if parts is None:
        return _invalid(f"not a date: {text!r}")
    year, month, day_of_month = parts
    if year not in _YEARS:
        return _invalid(f"year outside 1800..2200: {text!r}")
    try:
        day = datetime.date(year, month, day_of_month)
    except ValueError:
        return _invalid(f"not a date: {text!r}")
    return Normalized(day.isoformat(), {})


# ------------------------------------------------------------------------ identifiers, gtin


def normalize_tax_id(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """A tax / VAT id as upper-case alphanumerics ("de 123.456.789" → "DE123456789"). Key
    ``tax_id_key``: the hard identifier with its country prefix when it is a valid one
    (`mdm.identifiers`: "980780684" of a GB record → "GB980780684", so both spellings compare
    equal), else the same upper-case alphanumerics. Fewer than 4 alphanumerics is an error."""
    text = _text(raw)
    if not text:
        return _empty()
    tax_id = _NON_ALNUM.sub("", text).upper()
    if len(tax_id) < 4:
        return _invalid(f"not a tax id (fewer than 4 letters or digits): {text!r}")
    key = identifiers.normalize("tax_id", tax_id, country=_record_region(record)) or tax_id
    return Normalized(tax_id, {"tax_id_key": key})


def _registration_number(kind: str, what: str) -> KindNormalizer:
    def normalize_registration_number(
        raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
    ) -> Normalized:
        text = _text(raw)
        if not text:
            return _empty()
        value = identifiers.normalize(kind, text)
        if value is None:
            return _invalid(f"not a valid {what}: {text!r}")
        return Normalized(value, {f"{kind}_key": value})

    return normalize_registration_number


normalize_lei = _registration_number("lei", "LEI (20 characters, ISO 17442 check digits)")
normalize_duns = _registration_number("duns", "D-U-N-S number (9 digits)")

_GTIN_SEPARATORS = re.compile(r"[\s-]+")
_GTIN_LENGTHS = (8, 12, 13, 14)


def _gtin_check_digit_ok(digits: str) -> bool:
    """GS1 mod-10: weights 3,1,3,1 ... from the right, excluding the check digit."""
    body = digits[:-1]
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == int(digits[-1])


def normalize_gtin(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """A GTIN-8/12/13/14 with a valid check digit, as the 14-digit zero-padded form; key
    ``gtin_key`` the same, so an EAN-13 and its GTIN-14 form match."""
    text = _text(raw)
    if not text:
        return _empty()
    digits = _GTIN_SEPARATORS.sub("", text)
    if not digits.isascii() or not digits.isdigit():
        return _invalid(f"not a GTIN (digits only): {text!r}")
    if len(digits) not in _GTIN_LENGTHS:
        return _invalid(f"not a GTIN (8, 12, 13 or 14 digits, got {len(digits)}): {text!r}")
    if not _gtin_check_digit_ok(digits):
        return _invalid(f"GTIN check digit is wrong: {text!r}")
    gtin = digits.zfill(14)
    return Normalized(gtin, {"gtin_key": gtin})


# ----------------------------------------------------------------------------- email, phone

_EMAIL = re.compile(
    r"[^\s@<>()\[\],;:\"]+@((?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_](?:[\w-]*[^\W_])?)"
)


def normalize_email(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """An e-mail address, lower-case, without a "mailto:" prefix; keys ``email_key`` (the
    address) and ``email_domain``. Only the local@domain.tld shape is checked."""
    text = _text(raw)
    if not text:
        return _empty()
    address = text.lower()
    if address.startswith("mailto:"):
        address = address[7:].split("?", 1)[0].strip()
    match = _EMAIL.fullmatch(address)
    if match is None or len(match[1].rpartition(".")[2]) < 2:
        return _invalid(f"not an e-mail address: {text!r}")
    return Normalized(address, {"email_key": address, "email_domain": match[1]})


_E164 = phonenumbers.PhoneNumberFormat.E164
# Separators phonenumbers would skip anyway; removing them first makes parse ~15% faster.
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]+")


def _record_region(record: Mapping[str, Any]) -> str | None:
    country = record.get("country")
    if country is None or country == "":
        return None
    return country_code(country if isinstance(country, str) else _text(country))


@functools.lru_cache(maxsize=65536)
def e164_phone(text: str, region: str | None) -> str | None:
    """`text` as an E.164 number read in `region` (ISO alpha-2 or None), or None when it is not
    a possible number there (without a region: nor a valid North American one). Cached:
    shared switchboard numbers repeat across records."""
    candidate = _PHONE_PUNCTUATION.sub("", text)
    if not candidate.lstrip("+").isdigit():  # letters or an extension: let phonenumbers read it
        candidate = text
    elif region is None and candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        number = _north_american(candidate) if region is None else None
        if number is None:
            return None
    return phonenumbers.format_number(number, _E164)


def _north_american(candidate: str) -> phonenumbers.PhoneNumber | None:
    """A national number with no country to read it in, read as +1 when it is a valid number
    of the North American plan (a real area code and exchange: "(404) 875-0276"). US and
    Canadian exports often carry no country and write numbers so; elsewhere a national number
    starts with a trunk prefix ("030 …") or has another shape, which no NANP area code
    matches, and stays an error."""
    try:
        number = phonenumbers.parse(candidate, "US")
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def normalize_phone(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """A phone number as E.164 ("+4930123456"); key ``phone_key`` the same.

    National numbers are read in the region of the record's ``country``; numbers with "+CC"
    need none. Without a region, a leading "00" is read as the international prefix, and a
    valid North American number as +1 (`_north_american`).
    """
    text = _text(raw)
    if not text:
        return _empty()
    region = _record_region(record)
    e164 = e164_phone(text, region)
    if e164 is None:
        where = f"for region {region}" if region else "(no country for the region; use +CC)"
        return _invalid(f"not a phone number {where}: {text!r}")
    return Normalized(e164, {"phone_key": e164})


# ---------------------------------------------------------------------------------- website

_SCHEME = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//")
_HOST_END = re.compile(r"[/?#\\]")
_HOST = re.compile(r"[\w.-]+")


@functools.cache
def _public_suffix_list() -> PublicSuffixList:
    """The bundled public suffix list (never fetched); unknown TLDs are not registrable."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(accept_unknown=False)


def _unicode_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return label.encode("ascii").decode("idna")
    except UnicodeError:
        return label


@functools.lru_cache(maxsize=65536)
def registrable_domain(text: str) -> str | None:
    """The registrable domain ("acme.co.uk") of a URL or host name, or None.

    Scheme, user info, port, path and subdomains ("www", "shop") are dropped; punycode labels
    are shown in Unicode so "xn--mnchen-3ya.de" and "münchen.de" match.
    """
    host = _SCHEME.sub("", text.strip().lower())
    host = _HOST_END.split(host, maxsplit=1)[0].rpartition("@")[2].partition(":")[0].strip(".")
    if "." not in host or not _HOST.fullmatch(host):
        return None
    if "xn--" in host:
        host = ".".join(_unicode_label(label) for label in host.split("."))
    return _public_suffix_list().privatesuffix(host)


def normalize_website(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """A website as its bare registrable domain ("https://WWW.Shop.Acme.co.uk/about" →
    "acme.co.uk"); key ``domain`` the same."""
    text = _text(raw)
    if not text:
        return _empty()
    domain = registrable_domain(text)
    if domain is None:
        return _invalid(f"not a website with a registrable domain: {text!r}")
    return Normalized(domain, {"domain": domain})


# ---------------------------------------------------------------------------------- numbers

_CURRENCY_SIGNS = "$€£¥"
_NUMBER_EDGE = _CURRENCY_SIGNS + " "
_GROUP_SPACES = re.compile(r"[ \u00a0\u202f']")
_SPACE_GROUPED = re.compile(r"\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d+)?")
_PLAIN_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_COMMA_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DOT_GROUPED_DECIMAL_COMMA = re.compile(r"\d{1,3}(?:\.\d{3})+,\d+")
_DECIMAL_COMMA = re.compile(r"\d+,\d{1,2}")
_DOT_GROUPED = re.compile(r"\d{1,3}(?:\.\d{3}){2,}")
_EXPONENT = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)e[+-]?\d+", re.IGNORECASE)


def _parse_decimal(text: str) -> Decimal | None:
    """A written amount as Decimal, or None.

    Accepts a sign or accounting parentheses, currency signs ($€£¥) at either end, thousands
    grouped by commas, dots, spaces or apostrophes, and a decimal comma when the last separator
    is a comma followed by 1-2 digits ("1.234,50", "12,5") or the number is dot-grouped.
    "1,234" stays one thousand two hundred thirty-four.
    """
    number = text.strip()
    negative = False
    if number.startswith("(") and number.endswith(")"):
        negative, number = True, number[1:-1]
    number = number.strip(_NUMBER_EDGE)
    if number[:1] in ("-", "+"):
        negative ^= number[0] == "-"
        number = number[1:].strip(_NUMBER_EDGE)
    if _GROUP_SPACES.search(number):
        if not _SPACE_GROUPED.fullmatch(number):
            return None
        number = _GROUP_SPACES.sub("", number)
    if _PLAIN_NUMBER.fullmatch(number) or _EXPONENT.fullmatch(number):
        pass
    elif _COMMA_GROUPED.fullmatch(number):
        number = number.replace(",", "")
    elif _DOT_GROUPED_DECIMAL_COMMA.fullmatch(number) or _DECIMAL_COMMA.fullmatch(number):
        number = number.replace(".", "").replace(",", ".")
    elif _DOT_GROUPED.fullmatch(number):
        number = number.replace(".", "")
    else:
        return None
    amount = Decimal(number)
    return -amount if negative else amount


# Beyond this many digits either side of the point a value is a typo or an attack ("1e999999"
# would print a million digits), not an amount.
_MAX_MAGNITUDE = 40


def _to_decimal(raw: Any) -> Decimal | str | None:
    """`raw` as a finite Decimal, None when empty, or an error reason."""
    if isinstance(raw, bool):
        return f"not a number: {raw!r}"
    if isinstance(raw, int):
        amount = Decimal(raw)
    elif isinstance(raw, float):
        if not math.isfinite(raw):
            return f"not a finite number: {raw!r}"
        amount = Decimal(repr(raw))
    elif isinstance(raw, Decimal):
        if not raw.is_finite():
            return f"not a finite number: {str(raw)!r}"
        amount = raw
    else:
        text = _text(raw)
        if not text:
            return None
        try:
            parsed = _parse_decimal(text)
        except InvalidOperation:
            parsed = None
        if parsed is None:
            return f"not a number: {text!r}"
        amount = parsed
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: NaN and infinities were refused above
    if exponent < -_MAX_MAGNITUDE or (not amount.is_zero() and amount.adjusted() > _MAX_MAGNITUDE):
        return f"number out of range: {_text(raw)!r}"
    return amount


def normalize_decimal(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """An amount as a plain decimal string with the precision written ("1.234,50" → "1234.50",
    19.99 → "19.99", "1e3" → "1000"); no exponent, no key."""
    amount = _to_decimal(raw)
    if amount is None:
        return _empty()
    if isinstance(amount, str):
        return _invalid(amount)
    if amount.is_zero():
        amount = abs(amount)
    return Normalized(format(amount, "f"), {})


def normalize_integer(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """A whole number as int (42, "42", "42.0", "1,000"); fractions are an error, not rounded."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return Normalized(raw, {})
    amount = _to_decimal(raw)
    if amount is None:
        return _empty()
    if isinstance(amount, str):
        return _invalid(amount.replace("not a number", "not an integer", 1))
    if amount != amount.to_integral_value():
        return _invalid(f"not an integer: {_text(raw)!r}")
    return Normalized(int(amount), {})


# --------------------------------------------------------------------------------- currency

CURRENCY_SIGNS: dict[str, str] = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP"}


@functools.cache
def _currency_index() -> dict[str, str]:
    """Alpha codes, numeric codes and folded names (pycountry), and unambiguous signs."""
    import pycountry

    index: dict[str, str] = {}
    for currency in pycountry.currencies:
        code = currency.alpha_3
        index[code] = code
        numeric = getattr(currency, "numeric", None)
        if numeric:
            index.setdefault(numeric, code)
        index.setdefault(_fold(currency.name), code)
    for sign, code in CURRENCY_SIGNS.items():
        index[sign] = code
    return index


@functools.lru_cache(maxsize=1024)
def currency_code(text: str) -> str | None:
    """ISO 4217 alpha code for a code, numeric code, name or sign, else None."""
    index = _currency_index()
    return index.get(text.upper()) or index.get(text) or index.get(_fold(text))


def normalize_currency(
    raw: Any, record: Mapping[str, Any], attribute: Attribute | None = None
) -> Normalized:
    """A currency as ISO 4217 alpha code ("eur", "€", "Euro" → "EUR"); no key."""
    text = _text(raw)
    if not text:
        return _empty()
    code = currency_code(text)
    if code is None:
        return _invalid(f"unknown currency: {text!r}")
    return Normalized(code, {})


# ---------------------------------------------------------------------------------- records

NORMALIZERS: dict[str, KindNormalizer] = {
    "text": normalize_text,
    "name": normalize_name,
    "person_name": normalize_person_name,
    "choice": normalize_choice,
    "date": normalize_date,
    "tax_id": normalize_tax_id,
    "email": normalize_email,
    "phone": normalize_phone,
    "website": normalize_website,
    "address": normalize_address,
    "city": normalize_city,
    "postal_code": normalize_postal_code,
    "country": normalize_country,
    "code": normalize_code,
    "gtin": normalize_gtin,
    "lei": normalize_lei,
    "duns": normalize_duns,
    "decimal": normalize_decimal,
    "integer": normalize_integer,
    "currency": normalize_currency,
}


@functools.lru_cache(maxsize=256)
def normalizer_for(attribute: Attribute) -> Normalizer:
    """The ``(raw, record)`` normalizer for one declared attribute, bound to its declaration
    (choices, key name). Raises KeyError naming the attribute for an unknown kind."""
    try:
        normalize = NORMALIZERS[attribute.kind]
    except KeyError:
        raise KeyError(f"no normalizer for kind {attribute.kind!r} of {attribute.name!r}") from None
    return functools.partial(normalize, attribute=attribute)


PlaceholderTest = Callable[[str], bool]
_Step = tuple[str, KindNormalizer, "Attribute", PlaceholderTest | None]
_PLANS: dict[int, tuple[EntityType, tuple[_Step, ...]]] = {}


def _plan(entity: EntityType) -> tuple[_Step, ...]:
    """(attribute name, kind normalizer, attribute, placeholder test or None) per attribute,
    built once per entity: which attributes can hold a placeholder is decided here, not per
    value.

    The attribute is passed positionally at call time: cheaper than a bound partial on the
    per-row hot path.
    """
    cached = _PLANS.get(id(entity))
    if cached is None or cached[0] is not entity:
        for attribute in entity.attributes:
            normalizer_for(attribute)  # fail early, naming the attribute, on an unknown kind
        steps = tuple(
            (a.name, NORMALIZERS[a.kind], a, placeholder_test(a.kind)) for a in entity.attributes
        )
        cached = (entity, steps)
        _PLANS[id(entity)] = cached
    return cached[1]


_NON_DIGIT = re.compile(r"\D+")


@functools.cache
def placeholder_test(kind: str) -> PlaceholderTest | None:
    """The test of a text value of an attribute of `kind` for a placeholder meaning no value
    (`mdm.entities`: ``NO_VALUE`` and the kind's ``PLACEHOLDERS``, compared case-insensitively
    with whitespace collapsed; for phones and tax IDs also one repeated digit, for phones
    digits counting up); None for kinds that hold no placeholder. Built once per kind: ingest
    runs it for every value, and a real value costs a strip, a fold and a set lookup."""
    if kind not in PLACEHOLDER_KINDS:
        return None
    texts = NO_VALUE | PLACEHOLDERS.get(kind, frozenset())
    local_parts = frozenset(text for text in texts if text.endswith("@")) if kind == "email" else ()
    digits, counting = kind in ("phone", "tax_id"), kind == "phone"

    def test(raw: str) -> bool:
        # The digit rules look at the last digits; when the value ends in a digit (a phone
        # almost always does), that digit must fill the tail or end the counting run, which
        # one count tells before the digits are pulled out.
        last = raw[-1:]
        if digits and (
            not last.isdecimal()  # the same digits as `\D` leaves
            or raw.count(last) >= PLACEHOLDER_DIGITS
            or (counting and last == COUNTING_DIGITS[-1])
        ):
            found = _NON_DIGIT.sub("", raw)
            tail = found[-PLACEHOLDER_DIGITS:]
            if len(tail) == PLACEHOLDER_DIGITS and (
                tail.count(tail[0]) == PLACEHOLDER_DIGITS
                or (counting and found.endswith(COUNTING_DIGITS))
            ):
                return True
        if local_parts:
            local, at, _ = raw.partition("@")
            if at and f"{local.strip().casefold()}@" in local_parts:
                return True
        text = raw.strip()
        if not text.isprintable() or "  " in text:  # other whitespace, or runs of it
            text = " ".join(text.split())
        return text.casefold() in texts

    return test


def is_placeholder(kind: str, raw: Any) -> bool:
    """`raw` is a placeholder for no value of an attribute of `kind` (`placeholder_test`)."""
    test = placeholder_test(kind)
    return test is not None and isinstance(raw, str) and test(raw)


def normalize_record(entity: EntityType, raw: Mapping[str, Any]) -> NormalizedRecord:
    """Normalize the entity's canonical attributes present in `raw`; other columns are ignored.

    Empty values and placeholders (`is_placeholder`: "N/A", "000-000-0000") are left out of
    `values`; an invalid value goes to `invalid` with its raw text and reason while the rest
    of the row survives.
    """
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    invalid: dict[str, dict[str, str]] = {}
    for name, normalize, attribute, placeholder in _plan(entity):
        raw_value = raw.get(name)
        if raw_value is None or raw_value == "":
            continue
        if placeholder is not None and isinstance(raw_value, str) and placeholder(raw_value):
            continue
        result = normalize(raw_value, raw, attribute)
        if result.error is not None:
            invalid[name] = {"raw": str(raw_value), "reason": result.error}
        elif result.value is not None:
            values[name] = result.value
            keys.update(result.keys)
    return NormalizedRecord(values, keys, invalid)
