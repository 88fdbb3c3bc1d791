"""Hard identifiers: which values identify a thing, and when two records cannot be one.

Each entity declares its hard identifiers in `mdm.entities` (`EntityType.identifiers`): a
customer's tax ID (with its country), LEI and D-U-N-S number, a product's GTIN, a contract's
number within its source system. This module normalizes and validates them:

* `normalize(kind, value, country=...)` — the canonical value, or None when the value is
  absent, a placeholder ("N/A", "000000000", "unknown") or invalid (wrong length for its
  country, wrong check digit). A tax ID carries its country prefix: ``GB 301 435057`` and
  ``301435057`` of a GB record are both ``GB301435057``; a bare number without a country is
  not an identifier (it could be any country's).
* `identifiers(entity, attributes, source_system=...)` — kind → canonical value for one
  record. A per-source-system identifier is keyed ``kind@system`` (``contract_number@crm``), so
  records of different systems never compare it.
* `conflicts(entity, left, right)` — the kinds present, valid and different on both sides:
  such records are a cannot-link (matching never joins them, directly or transitively; a
  steward may, with a reason and a second steward). `reason(entity, kinds)` words it
  ("conflicting tax IDs").

Pure: no Django, no database. Check digits: GS1 (GTIN), ISO 7064 mod 97-10 (LEI), and for tax
IDs DE (ISO 7064 mod 11,10), GB (mod 97 and 9755), FR (key), BE (mod 97), IT (Luhn), AU ABN
(mod 89); other countries are checked for their format only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from typing import Any

from mdm.entities import EntityType, HardIdentifier, get_entity

__all__ = [
    "PLACEHOLDERS",
    "conflicts",
    "declared",
    "identifiers",
    "label",
    "normalize",
    "reason",
]

_SEPARATORS = re.compile(r"[^0-9A-Za-z]+")
PLACEHOLDERS = frozenset(
    {
        "NA",
        "NONE",
        "NULL",
        "NIL",
        "UNKNOWN",
        "UNK",
        "TBD",
        "TBA",
        "NOTAPPLICABLE",
        "NOTAVAILABLE",
        "PENDING",
        "MISSING",
        "XXX",
        "TEST",
        "0",
        "123456789",
        "1234567890",
        "0123456789",
        "987654321",
    }
)


def _compact(value: Any) -> str:
    text = str(value)
    if text.isascii() and text.isalnum():
        return text.upper()
    return _SEPARATORS.sub("", text).upper()


_NON_DIGITS = re.compile(r"[^0-9]+")


def _placeholder(compact: str) -> bool:
    """ "N/A", "unknown", "000000000", "XXXXXXX", "123456789" …: a value nobody meant."""
    if not compact or compact in PLACEHOLDERS:
        return True
    if compact.isdigit():
        digits = compact
    elif compact.isalpha():
        return compact.count(compact[0]) == len(compact)  # XXXXXXXX
    else:
        digits = _NON_DIGITS.sub("", compact)
    if len(digits) >= 4 and digits.count(digits[0]) == len(digits):
        return True  # 000000000, 999999999, DE000000000
    return len(digits) >= 9 and digits in PLACEHOLDERS


# ------------------------------------------------------------------------------ check digits


def gs1_check_digit_ok(digits: str) -> bool:
    """GS1 mod 10: weights 3, 1, 3, 1 … from the right, the check digit excluded."""
    body = digits[:-1]
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == int(digits[-1])


def _mod97_alnum(text: str) -> int:
    """ISO 7064 mod 97-10 over letters (A=10 … Z=35) and digits."""
    return int("".join(str(int(c, 36)) for c in text)) % 97


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _de_ok(digits: str) -> bool:
    """ISO 7064 mod 11,10 over the first eight digits."""
    product = 10
    for d in digits[:8]:
        total = (int(d) + product) % 10 or 10
        product = (2 * total) % 11
    check = (11 - product) % 10
    return check == int(digits[8])


def _gb_ok(digits: str) -> bool:
    """HMRC: weights 8 … 2 over seven digits plus the last two: ≡ 0 (mod 97), or ≡ 0 after
    adding 55 (the 9755 series)."""
    total = sum(int(d) * w for d, w in zip(digits[:7], range(8, 1, -1), strict=True))
    total += int(digits[7:9])
    return total % 97 == 0 or (total + 55) % 97 == 0


def _fr_ok(body: str) -> bool:
    key, siren = body[:2], body[2:]
    if not key.isdigit():
        return True  # the alphanumeric key of newer numbers: format only
    return int(key) == (12 + 3 * (int(siren) % 97)) % 97


def _be_ok(digits: str) -> bool:
    return 97 - int(digits[:8]) % 97 == int(digits[8:])


def _au_ok(digits: str) -> bool:
    """ABN: subtract 1 from the first digit, weights 10, 1, 3, 5 … 19, ≡ 0 (mod 89)."""
    weights = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)
    values = [int(d) for d in digits]
    values[0] -= 1
    return sum(v * w for v, w in zip(values, weights, strict=True)) % 89 == 0


# --------------------------------------------------------------------------------- tax IDs

# prefix → (body pattern, check or None, canonical body from the match). Bodies are compact
# (upper-case alphanumerics). EU VAT prefixes (Greece is EL), GB/XI, and a few national
# business numbers (US EIN, CA BN, AU ABN, CH UID, NO org number).
_Rule = tuple[re.Pattern[str], Any]
_TAX_RULES: dict[str, _Rule] = {
    "AT": (re.compile(r"U\d{8}"), None),
    "BE": (re.compile(r"[01]?\d{9}"), _be_ok),
    "BG": (re.compile(r"\d{9,10}"), None),
    "CY": (re.compile(r"\d{8}[A-Z]"), None),
    "CZ": (re.compile(r"\d{8,10}"), None),
    "DE": (re.compile(r"\d{9}"), _de_ok),
    "DK": (re.compile(r"\d{8}"), None),
    "EE": (re.compile(r"\d{9}"), None),
    "EL": (re.compile(r"\d{9}"), None),
    "ES": (re.compile(r"[A-Z0-9]\d{7}[A-Z0-9]"), None),
    "FI": (re.compile(r"\d{8}"), None),
    "FR": (re.compile(r"[0-9A-HJ-NP-Z]{2}\d{9}"), _fr_ok),
    "GB": (re.compile(r"\d{9}|\d{12}|GD\d{3}|HA\d{3}"), None),
    "HR": (re.compile(r"\d{11}"), None),
    "HU": (re.compile(r"\d{8}"), None),
    "IE": (re.compile(r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]"), None),
    "IT": (re.compile(r"\d{11}"), _luhn_ok),
    "LT": (re.compile(r"\d{9}|\d{12}"), None),
    "LU": (re.compile(r"\d{8}"), None),
    "LV": (re.compile(r"\d{11}"), None),
    "MT": (re.compile(r"\d{8}"), None),
    "NL": (re.compile(r"\d{9}B\d{2}"), None),
    "PL": (re.compile(r"\d{10}"), None),
    "PT": (re.compile(r"\d{9}"), None),
    "RO": (re.compile(r"\d{2,10}"), None),
    "SE": (re.compile(r"\d{10}01"), None),
    "SI": (re.compile(r"\d{8}"), None),
    "SK": (re.compile(r"\d{10}"), None),
    "XI": (re.compile(r"\d{9}|\d{12}|GD\d{3}|HA\d{3}"), None),
    "CH": (re.compile(r"E?(\d{9})(?:MWST|TVA|IVA)?"), None),
    "NO": (re.compile(r"(\d{9})(?:MVA)?"), None),
    "US": (re.compile(r"\d{9}"), None),
    "CA": (re.compile(r"(\d{9})(?:[A-Z]{2}\d{4})?"), None),
    "AU": (re.compile(r"\d{11}"), _au_ok),
}
# The GB check applies to the 9-digit standard numbers (and the 12-digit branch numbers'
# first nine).
_GB_CHECKED = re.compile(r"\d{9}(?:\d{3})?")
# Country code → VAT prefix where they differ.
_VAT_PREFIX = {"GR": "EL"}
_GENERIC = re.compile(r"[A-Z0-9]{4,20}")


def _tax_id(compact: str, country: str | None) -> str | None:
    prefix, body = compact[:2], compact[2:]
    if not (prefix.isalpha() and prefix in _TAX_RULES):
        if not country:
            return None  # a bare number could be any country's
        prefix = _VAT_PREFIX.get(country.upper(), country.upper())
        body = compact[2:] if compact.startswith(prefix) else compact
        if prefix not in _TAX_RULES:
            # No rule for this country: any 4–20 alphanumerics with at least four digits.
            if _GENERIC.fullmatch(body) and sum(c.isdigit() for c in body) >= 4:
                return prefix + body
            return None
    pattern, check = _TAX_RULES[prefix]
    match = pattern.fullmatch(body)
    if match is None:
        return None
    canonical = match.group(1) if match.groups() else body
    if prefix == "BE":
        canonical = canonical.zfill(10)
    if prefix in ("GB", "XI") and _GB_CHECKED.fullmatch(canonical):
        check = _gb_ok
    if check is not None and not check(canonical):
        return None
    if _placeholder(canonical):
        return None
    return prefix + canonical


def _lei(compact: str) -> str | None:
    if not re.fullmatch(r"[0-9A-Z]{18}\d{2}", compact):
        return None
    return compact if _mod97_alnum(compact) == 1 else None


def _duns(compact: str) -> str | None:
    return compact if re.fullmatch(r"\d{9}", compact) else None


def _gtin(compact: str) -> str | None:
    if not compact.isdigit() or len(compact) not in (8, 12, 13, 14):
        return None
    return compact.zfill(14) if gs1_check_digit_ok(compact) else None


def _code(compact: str) -> str | None:
    return compact


_KINDS = {
    "lei": _lei,
    "duns": _duns,
    "gtin": _gtin,
    "contract_number": _code,
}


def normalize(kind: str, value: str | None, *, country: str | None = None) -> str | None:
    """The canonical form of one identifier of `kind`, or None when absent or invalid."""
    if value is None:
        return None
    return _normalize(kind, value, country)


# What some sources write before the number: "ABN 51 824 753 556", "VAT: GB980780684".
_LABEL = re.compile(
    r"^\s*(?:VAT|ABN|EIN|TIN|BN|UID|UST-?ID(?:NR)?|TVA|BTW|IVA|NIF|CIF)"
    r"(?:\s*(?:NO|NR|NUMBER|ID))?(?![A-Z])[\s.:#-]*",
    re.IGNORECASE,
)


@lru_cache(maxsize=1 << 16)
def _normalize(kind: str, value: str, country: str | None) -> str | None:
    if kind == "tax_id" and not value[:1].isdigit():
        labelled = _LABEL.match(value)
        if labelled and labelled.end() < len(value) and value[labelled.end()].isalnum():
            value = value[labelled.end() :]
    compact = _compact(value)
    if _placeholder(compact):
        return None
    if kind == "tax_id":
        return _tax_id(compact, country)
    try:
        normalizer = _KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown identifier kind: {kind!r}") from None
    return normalizer(compact)


# ------------------------------------------------------------------------------ per record


@cache
def declared(entity: str) -> tuple[HardIdentifier, ...]:
    return get_entity(entity).identifiers


def _key(identifier: HardIdentifier, source_system: str | None) -> str | None:
    if not identifier.per_source_system:
        return identifier.kind
    return f"{identifier.kind}@{source_system}" if source_system else None


def identifiers(
    entity: str | EntityType,
    attributes: Mapping[str, Any],
    *,
    source_system: str | None = None,
) -> dict[str, str]:
    """Kind → canonical value of every valid hard identifier of one record. A
    per-source-system kind is keyed ``kind@system`` (left out without a system)."""
    declarations = declared(entity if isinstance(entity, str) else entity.name)
    found: dict[str, str] = {}
    for identifier in declarations:
        raw = attributes.get(identifier.attribute)
        if raw is None or raw == "":
            continue
        key = _key(identifier, source_system)
        if key is None:
            continue
        country = attributes.get(identifier.country) if identifier.country else None
        value = normalize(identifier.kind, str(raw), country=country or None)
        if value is not None:
            found[key] = value
    return found


def conflicts(
    entity: str | EntityType, left: Mapping[str, str], right: Mapping[str, str]
) -> list[str]:
    """The identifier kinds (keys of `identifiers`) present, valid and different on both
    sides, in declaration order."""
    del entity  # the keys carry everything; kept for symmetry with `identifiers`
    return sorted(k for k in left.keys() & right.keys() if left[k] != right[k])


def _base(kind: str) -> str:
    return kind.split("@", 1)[0]


def label(entity: str | EntityType, kind: str) -> str:
    """What a reason calls a kind: "tax IDs", "contract numbers"."""
    declarations = declared(entity if isinstance(entity, str) else entity.name)
    for identifier in declarations:
        if identifier.kind == _base(kind):
            return identifier.label
    return _base(kind).replace("_", " ")


def reason(entity: str | EntityType, kinds: Iterable[str]) -> str:
    """ "conflicting tax IDs; conflicting LEIs" — or "" for no kinds."""
    labels = dict.fromkeys(label(entity, k) for k in kinds)
    return "; ".join(f"conflicting {text}" for text in labels)
