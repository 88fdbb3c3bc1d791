"""Deterministic multi-source demo data with an exact ground truth.

Why this exists: `make demo` needs believable data to show matching, survivorship and
stewardship, and the matching-quality benchmark needs the same data with a ground truth it can
score pairwise precision/recall against. So every real-world thing (customer, product, contract,
entitlement) is generated once as a *truth*, then copied into the source systems that would
plausibly hold it. Each copy is written in that system's own conventions (key style, which
columns it has, phone/date/country formats, how careful its users are) and with realistic
noise: legal-form and abbreviation variants, typos, case changes, blank cells, people who moved
or changed their family name, in-system duplicates. Hard negatives keep the matching task
honest: sibling companies sharing a brand and web domain (in other countries, and in one
country with another trade and tax ID), a group's subsidiaries at its head office (some behind
one switchboard number), namesakes, twins (same name and city, another date of birth), family
members at one address, unrelated customers sharing a billing provider's mailbox, and
placeholder phones ("000-000-0000", "N/A") in the systems where clerks type them.
A handful of deliberately broken rows (unparseable dates, empty source keys) exercise the loader.

Determinism: one `random.Random(seed)` drives every choice and seeds one Faker instance per
locale; all dates are relative to the fixed `BASE_DATE`, never the clock. The same seed and size
give byte-identical files.

Pure Python + Faker: no Django, no database.
"""

from __future__ import annotations

import csv
import json
import random
import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from faker import Faker

from demo.native import NativeWriter, mapping_name
from mdm.entities import ENTITIES

__all__ = [
    "BASE_DATE",
    "ENTITY_SYSTEMS",
    "GROUND_TRUTH_FILE",
    "MANIFEST_FILE",
    "NOISE",
    "SYSTEMS",
    "DemoFile",
    "DemoManifest",
    "NoiseRates",
    "file_columns",
    "generate_demo_data",
]

T = TypeVar("T")

BASE_DATE = date(2026, 1, 1)
HISTORY_START = date(2022, 1, 1)
SYSTEMS = ("crm", "erp", "billing", "success", "support")
# File order: referenced entities first, so a loader can stream the manifest top to bottom.
ENTITY_SYSTEMS: dict[str, tuple[str, ...]] = {
    "customer": ("crm", "erp", "billing", "success", "support"),
    "product": ("erp", "crm", "billing"),
    "contract": ("crm", "erp", "billing"),
    "entitlement": ("billing", "success", "erp"),
}
GROUND_TRUTH_FILE = "ground_truth.csv"
MANIFEST_FILE = "manifest.json"
ORGANIZATION_SHARE = 0.75

# Which canonical attributes and reference columns each system's export has. Systems differ on
# purpose: billing has no website, support has contact details but rarely a tax id or address,
# erp has tax ids and addresses but no website or split person names, success tracks accounts.
_CUSTOMER_ADDRESS = ("address_line1", "address_line2", "city", "region", "postal_code", "country")
CARRIED_COLUMNS: dict[tuple[str, str], frozenset[str]] = {
    ("crm", "customer"): frozenset(
        ("kind", "name", "given_name", "family_name", "date_of_birth", "tax_id", "email", "phone")
        + ("website", "parent_key")
        + _CUSTOMER_ADDRESS
    ),
    ("erp", "customer"): frozenset(
        ("kind", "name", "date_of_birth", "tax_id", "email", "phone", "parent_key")
        + _CUSTOMER_ADDRESS
    ),
    ("billing", "customer"): frozenset(
        ("kind", "name", "tax_id", "email", "phone") + _CUSTOMER_ADDRESS
    ),
    ("success", "customer"): frozenset(
        ("kind", "name", "given_name", "family_name", "email", "phone", "website", "city")
        + ("region", "country", "parent_key")
    ),
    ("support", "customer"): frozenset(
        ("kind", "name", "given_name", "family_name", "date_of_birth", "tax_id", "email")
        + ("phone", "address_line1", "city", "postal_code", "country")
    ),
    ("erp", "product"): frozenset(ENTITIES["product"].attribute_names),
    ("crm", "product"): frozenset(
        ("sku", "name", "description", "family", "list_price", "currency")
    ),
    ("billing", "product"): frozenset(
        ("sku", "name", "description", "unit_of_measure", "list_price", "currency")
    ),
    ("crm", "contract"): frozenset(ENTITIES["contract"].survived_fields),
    ("erp", "contract"): frozenset(ENTITIES["contract"].survived_fields),
    ("billing", "contract"): frozenset(ENTITIES["contract"].survived_fields),
    ("billing", "entitlement"): frozenset(ENTITIES["entitlement"].survived_fields),
    ("erp", "entitlement"): frozenset(ENTITIES["entitlement"].survived_fields),
    ("success", "entitlement"): frozenset(
        ("status", "quantity", "start_date", "end_date", "customer_key")
    ),
}


def file_columns(system: str, entity: str) -> tuple[str, ...]:
    """The header of `{system}__{entity}.csv`: source_key, carried attributes and references in
    the canonical order of `mdm.entities`, then source_updated_at."""
    declared = ENTITIES[entity].survived_fields
    carried = CARRIED_COLUMNS[(system, entity)]
    unknown = carried.difference(declared)
    if unknown:
        raise ValueError(f"{system}/{entity} carries undeclared columns: {sorted(unknown)}")
    return ("source_key", *(name for name in declared if name in carried), "source_updated_at")


@dataclass(frozen=True)
class NoiseRates:
    """How often each kind of noise hits, in one place so the benchmark can quote it.

    Rates are per rendered copy of a record unless the comment says "per person" etc.
    """

    legal_form_variant: float = 0.45  # org name with another legal-form spelling, or none
    abbreviation: float = 0.30  # "International" → "Intl", "Street" → "St", "Straße" → "Str."
    ampersand_swap: float = 0.50  # "&" ↔ "and", when the name has one
    name_typo: float = 0.04  # one-character edit in an organization or person name
    street_typo: float = 0.04
    city_typo: float = 0.02
    email_typo: float = 0.02
    email_case: float = 0.05  # "John.Smith@Gmail.com"
    nickname: float = 0.08  # William → Bill, when the given name has a common nickname
    day_month_swap: float = 0.01  # date of birth keyed day-for-month (day ≤ 12)
    organization_mailbox: float = 0.35  # billing/support hold another mailbox at the domain
    in_system_duplicate: float = 0.025  # per customer: entered twice in one system
    moved: float = 0.06  # per person: new address (and usually phone/email) mid-history
    changed_email: float = 0.04  # per person: new e-mail address mid-history
    renamed: float = 0.04  # per person: family name change (marriage) mid-history
    relocated: float = 0.03  # per organization: new address and phone mid-history
    namesake: float = 0.04  # per person: same given + family name as another person
    family_member: float = 0.06  # per person: shares address, phone, family name with another
    sibling_group: float = 0.02  # per organization: a brand with 2–4 companies in other countries
    group_parent: float = 0.6  # per sibling group: the group's holding is a customer too
    brand_family: float = 0.03  # per organization: 2–3 companies of one brand in one country
    shared_office: float = 0.5  # per brand family: all at the holding's address
    shared_switchboard: float = 0.3  # per brand family at one address: one phone number too
    twin: float = 0.03  # per person: same name and city as another, another date of birth
    provider_mailbox: float = 0.04  # per organization: billing/support hold its provider's
    placeholder_phone: float = 0.02  # per copy in billing/support: "000-000-0000", "N/A"
    parent_link_missing: float = 0.15  # subsidiary copy without its parent_key filled
    stale_status: float = 0.08  # contract/entitlement status not updated in one system
    shifted_date: float = 0.12  # contract/entitlement start date a few days off
    changed_amount: float = 0.10  # contract total value differs (amendment, fees)
    changed_quantity: float = 0.10  # entitlement quantity differs
    changed_price: float = 0.15  # product list price differs (price update not synced)


NOISE = NoiseRates()


# ------------------------------------------------------------------------------ conventions


@dataclass(frozen=True)
class Country:
    """What a customer's country decides: locale, formats, legal forms, phone plan."""

    code: str
    locale: str
    weight: int
    currency: str
    dialing_code: str
    spellings: dict[str, str]  # alpha2, alpha3, english, local, colloquial
    web_suffix: str
    free_mail: tuple[str, ...]
    legal_forms: tuple[tuple[str, int], ...]
    regions: tuple[tuple[str, str], ...]  # (code, name)
    landline_areas: tuple[str, ...]
    mobile_areas: tuple[str, ...]
    number_length: int  # national significant number
    street_first: bool  # "Hauptstraße 12" rather than "12 Main Street"
    local_industries: tuple[str, ...]
    mailboxes: tuple[str, ...]
    tax_prefix: str


def _de_checked(digits: str) -> str:
    """Nine digits whose last is the ISO 7064 mod 11,10 check digit of the first eight."""
    product = 10
    for d in digits[:8]:
        total = (int(d) + product) % 10 or 10
        product = (2 * total) % 11
    return digits[:8] + str((11 - product) % 10)


def _fr_checked(digits: str) -> str:
    """Eleven digits: the two-digit key of the nine-digit SIREN that follows it."""
    siren = digits[2:]
    return f"{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def _gb_checked(digits: str) -> str:
    """Nine digits whose last two make the HMRC weighted sum a multiple of 97."""
    total = sum(int(d) * w for d, w in zip(digits[:7], range(8, 1, -1), strict=True))
    return f"{digits[:7]}{-total % 97:02d}"


def _abn_checked(digits: str) -> str:
    """Eleven digits whose first two make a valid ABN (mod 89) with the nine that follow."""
    weights = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)
    for prefix in range(10, 100):
        values = [int(d) for d in f"{prefix}{digits[2:]}"]
        values[0] -= 1
        if sum(v * w for v, w in zip(values, weights, strict=True)) % 89 == 0:
            return f"{prefix}{digits[2:]}"
    raise AssertionError("every ABN body has a check prefix")


COUNTRIES: dict[str, Country] = {
    country.code: country
    for country in (
        Country(
            "US", "en_US", 30, "USD", "1",
            {"alpha2": "US", "alpha3": "USA", "english": "United States",
             "local": "United States of America", "colloquial": "U.S.A."},
            "com", ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com"),
            (("Inc", 5), ("LLC", 3), ("Corp", 2)),
            (("CA", "California"), ("NY", "New York"), ("TX", "Texas"), ("IL", "Illinois"),
             ("WA", "Washington"), ("MA", "Massachusetts"), ("GA", "Georgia"),
             ("FL", "Florida"), ("CO", "Colorado"), ("PA", "Pennsylvania")),
            ("212", "415", "312", "617", "206", "512", "303", "404", "305", "213", "650"),
            ("347", "646", "917", "510", "773"),
            10, False, (), ("info", "contact", "sales", "hello"), "",
        ),
        Country(
            "GB", "en_GB", 15, "GBP", "44",
            {"alpha2": "GB", "alpha3": "GBR", "english": "United Kingdom",
             "local": "Great Britain", "colloquial": "UK"},
            "co.uk", ("gmail.com", "btinternet.com", "hotmail.co.uk", "outlook.com",
                      "yahoo.co.uk"),
            (("Ltd", 8), ("PLC", 1)),
            (("Greater London", "Greater London"), ("Greater Manchester", "Greater Manchester"),
             ("West Midlands", "West Midlands"), ("West Yorkshire", "West Yorkshire"),
             ("Kent", "Kent"), ("Surrey", "Surrey"), ("Hampshire", "Hampshire")),
            ("20", "161", "121", "113", "117", "131", "1223", "1865"),
            ("7700", "7711", "7723", "7800", "7912", "7960"),
            10, False, (), ("info", "enquiries", "hello", "sales"), "GB",
        ),
        Country(
            "DE", "de_DE", 17, "EUR", "49",
            {"alpha2": "DE", "alpha3": "DEU", "english": "Germany", "local": "Deutschland",
             "colloquial": "GERMANY"},
            "de", ("gmx.de", "web.de", "t-online.de", "gmail.com", "posteo.de"),
            (("GmbH", 7), ("AG", 2), ("GmbH & Co. KG", 1)),
            (("BY", "Bayern"), ("BE", "Berlin"), ("HH", "Hamburg"), ("HE", "Hessen"),
             ("NW", "Nordrhein-Westfalen"), ("BW", "Baden-Württemberg"),
             ("NI", "Niedersachsen"), ("SN", "Sachsen")),
            ("30", "40", "89", "221", "69", "711", "211", "6221", "351"),
            ("151", "160", "170", "171", "176"),
            10, True, ("Logistik", "Maschinenbau", "Technik", "Handel", "Bau", "Beratung"),
            ("info", "kontakt", "vertrieb"), "DE",
        ),
        Country(
            "FR", "fr_FR", 10, "EUR", "33",
            {"alpha2": "FR", "alpha3": "FRA", "english": "France", "local": "France",
             "colloquial": "FRANCE"},
            "fr", ("orange.fr", "free.fr", "gmail.com", "laposte.net", "sfr.fr"),
            (("SAS", 5), ("SARL", 3), ("SA", 2)),
            (("IDF", "Île-de-France"), ("ARA", "Auvergne-Rhône-Alpes"),
             ("PAC", "Provence-Alpes-Côte d'Azur"), ("NAQ", "Nouvelle-Aquitaine"),
             ("OCC", "Occitanie"), ("HDF", "Hauts-de-France"), ("BRE", "Bretagne")),
            ("1", "2", "3", "4", "5"), ("6", "7"),
            9, False, ("Logistique", "Conseil", "Distribution", "Ingénierie"),
            ("contact", "info", "commercial"), "FR",
        ),
        Country(
            "NL", "nl_NL", 8, "EUR", "31",
            {"alpha2": "NL", "alpha3": "NLD", "english": "Netherlands", "local": "Nederland",
             "colloquial": "The Netherlands"},
            "nl", ("ziggo.nl", "kpnmail.nl", "gmail.com", "hotmail.nl", "outlook.com"),
            (("B.V.", 9), ("N.V.", 1)),
            (("NH", "Noord-Holland"), ("ZH", "Zuid-Holland"), ("UT", "Utrecht"),
             ("NB", "Noord-Brabant"), ("GE", "Gelderland"), ("GR", "Groningen")),
            ("20", "10", "30", "70", "40", "50"), ("6",),
            9, True, ("Logistiek", "Techniek", "Bouw", "Handel", "Advies"),
            ("info", "contact", "verkoop"), "NL",
        ),
        Country(
            "CA", "en_CA", 10, "CAD", "1",
            {"alpha2": "CA", "alpha3": "CAN", "english": "Canada", "local": "Canada",
             "colloquial": "CANADA"},
            "ca", ("gmail.com", "rogers.com", "shaw.ca", "outlook.com", "yahoo.ca"),
            (("Inc", 6), ("Ltd", 3), ("Corp", 1)),
            (("ON", "Ontario"), ("QC", "Quebec"), ("BC", "British Columbia"),
             ("AB", "Alberta"), ("MB", "Manitoba"), ("NS", "Nova Scotia")),
            ("416", "604", "514", "403", "613", "905", "780"), ("647", "778", "438"),
            10, False, (), ("info", "sales", "contact"), "",
        ),
        Country(
            "AU", "en_AU", 10, "AUD", "61",
            {"alpha2": "AU", "alpha3": "AUS", "english": "Australia",
             "local": "Australia", "colloquial": "AUSTRALIA"},
            "com.au", ("bigpond.com", "gmail.com", "optusnet.com.au", "outlook.com"),
            (("Pty Ltd", 9), ("Ltd", 1)),
            (("NSW", "New South Wales"), ("VIC", "Victoria"), ("QLD", "Queensland"),
             ("WA", "Western Australia"), ("SA", "South Australia"), ("TAS", "Tasmania")),
            ("2", "3", "7", "8"), ("4",),
            9, False, (), ("info", "enquiries", "admin"), "",
        ),
    )
}  # fmt: skip

# Legal forms: the canonical spelling first, then the spellings people also write.
LEGAL_FORMS: dict[str, tuple[str, ...]] = {
    "Inc": ("Inc.", "Inc", ", Inc.", "Incorporated", ""),
    "LLC": ("LLC", "L.L.C.", ", LLC", ""),
    "Corp": ("Corporation", "Corp.", "Corp", ""),
    "Ltd": ("Ltd", "Ltd.", "Limited", ""),
    "PLC": ("plc", "PLC", "Public Limited Company", ""),
    "GmbH": ("GmbH", "Gmbh", "G.m.b.H.", ""),
    "AG": ("AG", "Aktiengesellschaft", ""),
    "GmbH & Co. KG": ("GmbH & Co. KG", "GmbH & Co KG", "GmbH u. Co. KG", "GmbH"),
    "SAS": ("SAS", "S.A.S.", ""),
    "SARL": ("SARL", "S.A.R.L.", "Sarl", ""),
    "SA": ("SA", "S.A.", ""),
    "B.V.": ("B.V.", "BV", "B.V", ""),
    "N.V.": ("N.V.", "NV", ""),
    "Pty Ltd": ("Pty Ltd", "Pty. Ltd.", "Pty Limited", ""),
}

INDUSTRIES = (
    "Logistics", "Systems", "Technologies", "Manufacturing", "Consulting", "Foods",
    "Pharmaceuticals", "Energy", "Solutions", "Industries", "Engineering", "Software",
    "Analytics", "Capital", "Media", "Retail", "Services", "Robotics", "Materials", "Health",
    "Networks", "Laboratories", "Trading", "Construction", "Partners",
)  # fmt: skip
BRAND_HEADS = (
    "North", "Blue", "Silver", "Bright", "Iron", "Green", "Red", "Summit", "Pine", "Oak",
    "Stone", "River", "Lake", "Clear", "Swift", "True", "Prime", "Alpha", "Nova", "Apex",
    "Vertex", "Crest", "Harbor", "Eagle", "Falcon", "Maple", "Cedar", "Golden", "Star", "Sun",
    "Wave", "Peak", "Atlas", "Orion", "Zenith", "Polar", "Coral", "Granite", "Copper", "Quantum",
)  # fmt: skip
BRAND_TAILS = (
    "wind", "peak", "line", "field", "gate", "bridge", "point", "ridge", "stone", "works",
    "wave", "light", "path", "view", "core", "tech", "ware", "mark", "land", "port", "dale",
    "forge", "crest", "spring", "well", "brook", "haven", "side", "shore", "vale",
)  # fmt: skip
PARTNER_WORDS = ("Associates", "Brothers", "Partners", "Company")
GROUP_WORDS = ("Group", "Holdings", "International")
# Billing and payroll providers whose mailbox stands in for their clients' own.
PROVIDER_DOMAINS = ("billtrust-mail.com", "invoicecloud.net", "payables-hub.com", "ap-desk.io")
PLACEHOLDER_PHONES = ("000-000-0000", "N/A", "0000000000", "999-999-9999", "unknown")

NICKNAMES: dict[str, tuple[str, ...]] = {
    "William": ("Bill", "Will"), "Robert": ("Bob", "Rob"), "Richard": ("Rick", "Rich"),
    "James": ("Jim", "Jimmy"), "Michael": ("Mike",), "Elizabeth": ("Liz", "Beth"),
    "Katherine": ("Kate", "Kathy"), "Catherine": ("Cathy", "Kate"), "Jennifer": ("Jen",),
    "Thomas": ("Tom",), "Christopher": ("Chris",), "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",), "Joseph": ("Joe",), "Margaret": ("Maggie", "Peggy"),
    "Patricia": ("Pat", "Trish"), "Anthony": ("Tony",), "Steven": ("Steve",),
    "Stephen": ("Steve",), "Andrew": ("Andy", "Drew"), "Joshua": ("Josh",),
    "Benjamin": ("Ben",), "Samuel": ("Sam",), "Alexander": ("Alex",), "Nicholas": ("Nick",),
    "Jonathan": ("Jon",), "Timothy": ("Tim",), "Rebecca": ("Becky",), "Susan": ("Sue",),
    "Deborah": ("Deb", "Debbie"), "Jessica": ("Jess",), "Kimberly": ("Kim",),
    "Jacqueline": ("Jackie",), "Gregory": ("Greg",), "Kenneth": ("Ken",), "Ronald": ("Ron",),
    "Donald": ("Don",), "Edward": ("Ed", "Ted"), "Johannes": ("Hannes",),
    "Friedrich": ("Fritz",), "Wolfgang": ("Wolf",), "Alexandra": ("Alex",),
    "Christina": ("Chris", "Tina"), "Christine": ("Chris",), "Elisabeth": ("Lisa", "Elli"),
    "Nicolas": ("Nico",), "Maximilian": ("Max",), "Jan-Peter": ("Jan",), "Francesca": ("Fran",),
}  # fmt: skip

ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "International": ("Intl", "Int'l", "Intl."),
    "Corporation": ("Corp", "Corp."),
    "Company": ("Co", "Co."),
    "Technologies": ("Tech", "Technology"),
    "Manufacturing": ("Mfg",),
    "Services": ("Svcs",),
    "Associates": ("Assoc", "Assocs"),
    "Brothers": ("Bros", "Bros."),
    "Engineering": ("Eng",),
    "Laboratories": ("Labs", "Lab"),
    "Systems": ("Sys",),
    "Holdings": ("Hldgs",),
    "Pharmaceuticals": ("Pharma",),
    "Street": ("St", "St."),
    "Avenue": ("Ave", "Ave.", "Av"),
    "Road": ("Rd", "Rd."),
    "Boulevard": ("Blvd",),
    "Drive": ("Dr", "Dr."),
    "Lane": ("Ln",),
    "Court": ("Ct",),
    "Place": ("Pl",),
    "Square": ("Sq",),
    "Suite": ("Ste", "Ste."),
    "Floor": ("Fl",),
    "Building": ("Bldg",),
    "Apartment": ("Apt",),
    "avenue": ("av.",),
    "boulevard": ("bd", "bld"),
}
_ABBREVIABLE = re.compile(r"\b(" + "|".join(ABBREVIATIONS) + r")\b")
_GERMAN_STREET = re.compile(r"(?i)stra(?:ß|ss)e\b")
_DUTCH_STREET = re.compile(r"straat\b")
_GERMAN_FOLDS = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
)
_KEYBOARD_NEIGHBOURS = {
    "a": "qwsz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc",
    "g": "ftyhbv", "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop",
    "m": "njk", "n": "bhjm", "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz",
    "t": "rfgy", "u": "yhji", "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}  # fmt: skip
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class SystemStyle:
    """How one source system writes values: its field formats and its users' habits.

    `fill` is the chance a cell is filled when the truth has a value (default 0.97).
    """

    phone_formats: tuple[tuple[str, float], ...]
    country_formats: tuple[tuple[str, float], ...]
    date_formats: tuple[tuple[str, float], ...]
    upper_case: float  # legacy all-caps data entry
    ascii_only: float  # accents folded away (Müller → Mueller)
    fill: dict[str, float]
    kind_words: tuple[str, str] = ("organization", "person")
    kind_word_rate: float = 0.0


STYLES: dict[str, SystemStyle] = {
    "crm": SystemStyle(
        phone_formats=(("national", 3), ("punctuated", 2), ("international", 4), ("e164", 1)),
        country_formats=(("english", 6), ("alpha2", 2), ("colloquial", 1)),
        date_formats=(("iso", 9), ("long", 1)),
        upper_case=0.03,
        ascii_only=0.05,
        fill={
            "date_of_birth": 0.5, "tax_id": 0.4, "email": 0.9, "phone": 0.85, "website": 0.85,
            "address_line1": 0.9, "address_line2": 0.7, "city": 0.92, "region": 0.8,
            "postal_code": 0.88, "country": 0.95,
        },
    ),
    "erp": SystemStyle(
        phone_formats=(("national", 6), ("punctuated", 2), ("international", 1), ("compact", 2)),
        country_formats=(("alpha2", 6), ("alpha3", 3), ("local", 1)),
        date_formats=(("dotted", 6), ("iso", 4)),
        upper_case=0.25,
        ascii_only=0.5,
        fill={
            "date_of_birth": 0.35, "tax_id": 0.95, "email": 0.6, "phone": 0.85,
            "address_line1": 0.98, "address_line2": 0.5, "city": 0.98, "region": 0.6,
            "postal_code": 0.97, "country": 1.0,
        },
    ),
    "billing": SystemStyle(
        phone_formats=(("e164", 6), ("international", 2), ("national", 1)),
        country_formats=(("alpha2", 1),),
        date_formats=(("iso", 1),),
        upper_case=0.01,
        ascii_only=0.1,
        fill={
            "tax_id": 0.55, "email": 0.99, "phone": 0.5, "address_line1": 0.85,
            "address_line2": 0.6, "city": 0.85, "region": 0.7, "postal_code": 0.85,
            "country": 0.9,
        },
        kind_words=("company", "individual"),
        kind_word_rate=0.7,
    ),
    "success": SystemStyle(
        phone_formats=(("international", 4), ("national", 3), ("punctuated", 2)),
        country_formats=(("english", 5), ("alpha2", 3), ("colloquial", 2)),
        date_formats=(("long", 5), ("iso", 5)),
        upper_case=0.02,
        ascii_only=0.05,
        fill={
            "given_name": 0.95, "family_name": 0.95, "email": 0.8, "phone": 0.5,
            "website": 0.9, "city": 0.6, "region": 0.4, "country": 0.85,
        },
    ),
    "support": SystemStyle(
        phone_formats=(("national", 2), ("punctuated", 2), ("international", 2), ("e164", 1),
                       ("compact", 1)),
        country_formats=(("english", 4), ("colloquial", 3), ("local", 2), ("alpha2", 1)),
        date_formats=(("long", 5), ("iso", 3), ("dotted", 2)),
        upper_case=0.02,
        ascii_only=0.15,
        fill={
            "date_of_birth": 0.25, "tax_id": 0.08, "email": 0.97, "phone": 0.75,
            "address_line1": 0.15, "city": 0.3, "postal_code": 0.15, "country": 0.55,
        },
    ),
}  # fmt: skip

# Products: (family, sku prefix, unit of measure, base names, price range in cents).
PRODUCT_FAMILIES = (
    ("Platform", "PLT", "USER", ("Keystone Platform", "Keystone Workspace", "Keystone Cloud"),
     (2_000, 20_000)),
    ("Analytics", "ANL", "USER", ("Insight Analytics", "Pulse Dashboards", "Forecast Studio"),
     (1_500, 15_000)),
    ("Security", "SEC", "USER", ("Shield Identity", "Vault Secrets", "Sentinel Audit"),
     (1_000, 12_000)),
    ("Support", "SUP", "YEAR", ("Premier Support", "Standard Support", "Critical Support"),
     (500_000, 5_000_000)),
    ("Services", "SRV", "HOUR", ("Implementation Services", "Data Migration",
                                 "Solution Architecture"), (15_000, 30_000)),
    ("Hardware", "HW", "EA", ("Edge Gateway", "Sensor Hub", "Rack Appliance"),
     (20_000, 900_000)),
    ("Training", "TRN", "SEAT", ("Administrator Training", "Developer Bootcamp",
                                 "Analyst Workshop"), (50_000, 300_000)),
    ("Connectors", "CON", "EA", ("SAP Connector", "Salesforce Connector",
                                 "Snowflake Connector"), (100_000, 1_000_000)),
)  # fmt: skip
PRODUCT_TIERS = ("Starter", "Standard", "Professional", "Enterprise", "Ultimate")
USD_TO_EUR = 0.92


# ---------------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class DemoFile:
    path: str
    system: str
    entity: str
    rows: int
    native: str = ""  # the same rows in the system's native shape (NDJSON), and its mapping
    mapping: str = ""


@dataclass(frozen=True)
class DemoManifest:
    """What `generate_demo_data` wrote; mirrors manifest.json (paths relative to it)."""

    seed: int
    files: tuple[DemoFile, ...]
    ground_truth: str = GROUND_TRUTH_FILE

    @property
    def total_rows(self) -> int:
        return sum(demo_file.rows for demo_file in self.files)

    def as_json(self) -> dict:
        return {
            "seed": self.seed,
            "files": [
                {"path": f.path, "system": f.system, "entity": f.entity, "rows": f.rows}
                | ({"native": f.native, "mapping": f.mapping} if f.native else {})
                for f in self.files
            ],
            "ground_truth": self.ground_truth,
        }

    @classmethod
    def from_json(cls, document: dict) -> DemoManifest:
        return cls(
            seed=document["seed"],
            files=tuple(DemoFile(**entry) for entry in document["files"]),
            ground_truth=document["ground_truth"],
        )

    @classmethod
    def load(cls, directory: Path) -> DemoManifest:
        """Read the manifest.json a previous run wrote into `directory`."""
        return cls.from_json(json.loads((Path(directory) / MANIFEST_FILE).read_text("utf-8")))


# -------------------------------------------------------------------------------- the truth


@dataclass(frozen=True)
class Phone:
    area: str
    subscriber: str


@dataclass(frozen=True)
class Address:
    line1: str
    line2: str
    city: str
    region: tuple[str, str]
    postal_code: str


@dataclass(frozen=True)
class Contact:
    address: Address
    phone: Phone
    email: str


@dataclass(frozen=True)
class CustomerState:
    """The parts of a customer that change over time: copies older than the change show the
    previous state, which is how "the person moved" noise stays consistent per copy."""

    family_name: str
    contact: Contact


@dataclass(eq=False)
class TrueCustomer:
    kind: str
    country: Country
    state: CustomerState
    previous: CustomerState | None = None
    changed_at: datetime | None = None
    core: str = ""  # organization name without legal form, e.g. "Northwind Logistics"
    legal_form: str = ""
    tax_id: str = ""
    domain: str = ""
    parent: TrueCustomer | None = None
    given_name: str = ""
    date_of_birth: date | None = None
    systems: tuple[str, ...] = ()
    duplicated_in: tuple[str, ...] = ()
    true_id: str = ""
    # A mailbox many unrelated customers share (a billing provider's): billing and support
    # copies carry it instead of the customer's own.
    shared_mailbox: str = ""

    def state_at(self, moment: datetime) -> CustomerState:
        if self.previous is not None and self.changed_at and moment < self.changed_at:
            return self.previous
        return self.state


@dataclass(eq=False)
class TrueProduct:
    true_id: str
    sku_family: str
    sku_number: int
    name: str
    description: str
    family: str
    gtin: str
    unit_of_measure: str
    price_cents: int
    systems: tuple[str, ...]
    duplicated_in: tuple[str, ...] = ()

    @property
    def sku(self) -> str:
        return f"{self.sku_family}-{self.sku_number:04d}"


@dataclass(eq=False)
class TrueContract:
    true_id: str
    year: int
    sequence: int
    customer: TrueCustomer
    start: date
    end: date
    status: str
    value_cents: int
    systems: tuple[str, ...]
    customer_copy: dict[str, int] = field(default_factory=dict)  # system → which duplicate

    @property
    def currency(self) -> str:
        return self.customer.country.currency


@dataclass(eq=False)
class TrueEntitlement:
    true_id: str
    contract: TrueContract
    product: TrueProduct
    quantity: int
    start: date
    end: date
    status: str
    systems: tuple[str, ...]


@dataclass(eq=False)
class SourceRow:
    """One row of one export; `true_id` is None for deliberately keyless rows."""

    true_id: str | None
    values: dict[str, str]
    updated_at: datetime
    references: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    source_key: str = ""


# ------------------------------------------------------------------------- small primitives


def _pick(rng: random.Random, weighted: Sequence[tuple[T, float]]) -> T:
    """A weighted choice that consumes exactly one random number (stable across versions)."""
    total = sum(weight for _, weight in weighted)
    point = rng.random() * total
    for value, weight in weighted:
        point -= weight
        if point < 0:
            return value
    return weighted[-1][0]


def _moment(rng: random.Random, start: date, end: date) -> datetime:
    """A random second in [start, end); a start at or after `end` means "just before end"."""
    start = min(start, end - timedelta(days=1))
    span = (end - start).days * 86_400
    return datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(
        seconds=rng.randrange(span)
    )


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choices(string.digits, k=count))


def _ascii(text: str) -> str:
    """What an ASCII-only system stores: German umlauts spelled out, other accents dropped."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_GERMAN_FOLDS))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _slug(text: str) -> str:
    return "".join(ch for ch in _ascii(text).lower() if ch.isalnum())


def _typo(rng: random.Random, text: str) -> str:
    """One realistic keying error: a neighbouring key, a dropped, doubled or swapped letter.

    The first letter is left alone, as it is in most real typos (and blocking relies on it).
    """
    positions = [index for index, ch in enumerate(text) if ch.isalpha()][1:]
    if len(positions) < 2:
        return text
    index = rng.choice(positions)
    letter = text[index]
    operation = rng.random()
    if operation < 0.3:
        neighbours = _KEYBOARD_NEIGHBOURS.get(letter.lower())
        if neighbours:
            swap = rng.choice(neighbours)
            return text[:index] + (swap.upper() if letter.isupper() else swap) + text[index + 1 :]
    if operation < 0.55:
        return text[:index] + text[index + 1 :]
    if operation < 0.75:
        return text[:index] + letter + text[index:]
    if index + 1 < len(text) and text[index + 1].isalpha():
        return text[:index] + text[index + 1] + letter + text[index + 2 :]
    return text[:index] + text[index + 1 :]


def _abbreviate(rng: random.Random, text: str) -> str:
    """Shorten the words people shorten: "International" → "Intl", "Straße" → "Str."."""
    text = _ABBREVIABLE.sub(
        lambda match: rng.choice(ABBREVIATIONS[match[1]]) if rng.random() < 0.85 else match[1],
        text,
    )
    text = _GERMAN_STREET.sub(lambda match: rng.choice(("str.", "strasse")), text)
    return _DUTCH_STREET.sub("str.", text)


def _recase(rng: random.Random, text: str, upper_rate: float) -> str:
    roll = rng.random()
    if roll < upper_rate:
        return text.upper()
    if roll < upper_rate + 0.02:
        return text.lower()
    if roll < upper_rate + 0.04:
        return text.title()
    return text


def _format_date(value: date, style: str) -> str:
    if style == "dotted":
        return f"{value.day:02d}.{value.month:02d}.{value.year}"
    if style == "long":
        return f"{_MONTH_NAMES[value.month - 1]} {value.day}, {value.year}"
    return value.isoformat()


def _gtin13(body12: str) -> str:
    """A GTIN-13 with its GS1 mod-10 check digit (weights 3,1,3,1... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body12)))
    return body12 + str((10 - total % 10) % 10)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _shift_months(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, 28))


# ---------------------------------------------------------------------------- phone numbers


def _halves(digits: str) -> str:
    middle = len(digits) // 2
    return f"{digits[:middle]} {digits[middle:]}"


def _format_phone(country: Country, phone: Phone, style: str) -> str:
    """The same number in the formats people and systems actually use, per country."""
    area, subscriber, code = phone.area, phone.subscriber, country.dialing_code
    if code == "1":  # NANP: no trunk prefix
        exchange, line = subscriber[:3], subscriber[3:]
        return {
            "national": f"{area}-{exchange}-{line}",
            "punctuated": f"({area}) {exchange}-{line}",
            "international": f"+1 {area} {exchange} {line}",
            "e164": f"+1{area}{subscriber}",
            "compact": f"{area}{subscriber}",
        }[style]
    national = f"0{area}{subscriber}"
    if country.code == "FR":
        pairs = " ".join(national[i : i + 2] for i in range(0, len(national), 2))
        return {
            "national": pairs,
            "punctuated": pairs.replace(" ", "."),
            "international": f"+33 {area} {' '.join(pairs.split()[1:])}",
            "e164": f"+33{area}{subscriber}",
            "compact": national,
        }[style]
    grouped = _halves(subscriber)
    punctuated = {
        "GB": f"+44 (0){area} {grouped}",
        "DE": f"0{area}/{subscriber}",
        "NL": f"0{area}-{subscriber}",
        "AU": f"(0{area}) {grouped}",
    }[country.code]
    return {
        "national": f"0{area} {grouped}",
        "punctuated": punctuated,
        "international": f"+{code} {area} {grouped}",
        "e164": f"+{code}{area}{subscriber}",
        "compact": national,
    }[style]


# ------------------------------------------------------------------------- building truths


class _Truths:
    """Invents the real-world things, once each, with their hard negatives built in.

    Keeps the uniqueness registers (names, domains, tax ids, e-mails) so that two different
    things only look alike where a hard negative is intended.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.fakers: dict[str, Faker] = {}
        for code, country in COUNTRIES.items():
            fake = Faker(country.locale)
            fake.seed_instance(rng.getrandbits(64))
            self.fakers[code] = fake
        self.cores: set[str] = set()
        self.domains: set[str] = set()
        self.tax_ids: set[str] = set()
        self.emails: set[str] = set()
        self.country_weights = tuple((c, c.weight) for c in COUNTRIES.values())

    # --- shared pieces

    def country(self) -> Country:
        return _pick(self.rng, self.country_weights)

    def phone(self, country: Country, *, mobile: bool) -> Phone:
        rng = self.rng
        area = rng.choice(country.mobile_areas if mobile else country.landline_areas)
        length = country.number_length - len(area)
        first = str(rng.randint(2, 9))
        return Phone(area, first + _digits(rng, length - 1))

    def address(self, country: Country, *, organization: bool) -> Address:
        rng, fake = self.rng, self.fakers[country.code]
        street = fake.street_name()
        number = str(rng.randint(1, 240 if country.street_first else 9800))
        if country.street_first and rng.random() < 0.06:
            number += rng.choice("abc")
        line1 = f"{street} {number}" if country.street_first else f"{number} {street}"
        line2 = ""
        if rng.random() < (0.35 if organization else 0.15):
            line2 = self._second_line(country, organization)
        postal_code = fake.postcode()
        if country.code == "US" and rng.random() < 0.35:
            postal_code += "-" + _digits(rng, 4)
        return Address(line1, line2, fake.city(), rng.choice(country.regions), postal_code)

    def _second_line(self, country: Country, organization: bool) -> str:
        rng = self.rng
        unit, letter = rng.randint(2, 40), rng.choice("ABCDEF")
        options: tuple[str, ...]
        if country.code == "DE":
            options = (f"{unit % 6 + 1}. OG", f"Haus {letter}", f"Gebäude {letter}")
        elif country.code == "FR":
            options = (f"Bâtiment {letter}", f"{unit % 8 + 1}e étage")
        elif country.code == "NL":
            options = (f"{unit % 8 + 1}e verdieping", f"Unit {unit}")
        elif country.code == "GB":
            options = (f"Unit {unit}", f"Floor {unit % 9 + 1}", f"Flat {unit}")
        elif organization:
            options = (f"Suite {unit * 10}", f"Floor {unit % 30 + 1}", f"Building {letter}")
        else:
            options = (f"Apartment {unit}", f"Unit {unit}")
        return rng.choice(options)

    def unique_email(self, local: str, domain: str) -> str:
        email = f"{local}@{domain}"
        while email in self.emails:
            email = f"{local}{self.rng.randint(1, 999)}@{domain}"
        self.emails.add(email)
        return email

    # --- organizations

    def organization_core(self, country: Country) -> tuple[str, str, str]:
        """A unique trading name (without legal form) and the brand and industry in it."""
        rng, fake = self.rng, self.fakers[country.code]
        for attempt in range(1000):
            roll = rng.random()
            if roll < 0.45:
                brand = rng.choice(BRAND_HEADS) + rng.choice(BRAND_TAILS)
            elif roll < 0.85:
                brand = fake.last_name()
            else:
                brand = f"{fake.last_name()} & {fake.last_name()}"
            if " & " in brand:
                industry = rng.choice(PARTNER_WORDS)
            elif country.local_industries and rng.random() < 0.4:
                industry = rng.choice(country.local_industries)
            else:
                industry = rng.choice(INDUSTRIES)
            core = f"{brand} {industry}"
            if rng.random() < 0.08:
                core = f"{brand} International {industry}"
            if attempt > 50:
                core = f"{core} {rng.choice(GROUP_WORDS)} {attempt}"
            if core.casefold() not in self.cores:
                self.cores.add(core.casefold())
                return core, brand, industry
        raise RuntimeError("could not invent a unique organization name")

    def domain(self, brand: str, industry: str, country: Country) -> str:
        rng = self.rng
        for _ in range(100):
            separator = "-" if rng.random() < 0.4 else ""
            stem = _slug(brand.split(" & ")[0])
            if rng.random() < 0.7 or " & " in brand:
                stem = f"{stem}{separator}{_slug(industry)}"
            suffix = country.web_suffix if rng.random() < 0.7 else "com"
            domain = f"{stem}.{suffix}"
            if domain not in self.domains:
                self.domains.add(domain)
                return domain
        domain = f"{_slug(brand)}{rng.randint(10, 9999)}.com"
        self.domains.add(domain)
        return domain

    def tax_id(self, country: Country) -> str:
        rng = self.rng
        while True:
            # Check digits where the country has well-known ones (`mdm.identifiers`), so
            # every generated tax ID is a valid hard identifier.
            if country.code == "US":
                tax_id = f"{rng.randint(10, 99)}-{_digits(rng, 7)}"
            elif country.code == "DE":
                tax_id = "DE" + _de_checked(f"{rng.randint(1, 9)}{_digits(rng, 8)}")
            elif country.code == "FR":
                tax_id = "FR" + _fr_checked(_digits(rng, 11))
            elif country.code == "NL":
                tax_id = f"NL{rng.randint(1, 9)}{_digits(rng, 8)}B01"
            elif country.code == "CA":
                tax_id = f"{rng.randint(1, 9)}{_digits(rng, 8)}RT0001"
            elif country.code == "AU":
                abn = _abn_checked(f"{rng.randint(10, 99)}{_digits(rng, 9)}")
                tax_id = f"{abn[:2]} {abn[2:5]} {abn[5:8]} {abn[8:]}"
            elif country.tax_prefix == "GB":
                tax_id = "GB" + _gb_checked(f"{rng.randint(1, 9)}{_digits(rng, 8)}")
            else:
                tax_id = f"{country.tax_prefix}{rng.randint(1, 9)}{_digits(rng, 8)}"
            if tax_id not in self.tax_ids:
                self.tax_ids.add(tax_id)
                return tax_id

    def organization(
        self,
        country: Country,
        *,
        core: str | None = None,
        domain: str | None = None,
        mailbox_tag: str = "",
    ) -> TrueCustomer:
        rng = self.rng
        if core is None:
            core, brand, industry = self.organization_core(country)
            domain = self.domain(brand, industry, country)
        assert domain is not None
        legal_form = _pick(rng, country.legal_forms)
        mailbox = country.mailboxes[0] if rng.random() < 0.6 else rng.choice(country.mailboxes)
        contact = Contact(
            self.address(country, organization=True),
            self.phone(country, mobile=False),
            self.unique_email(f"{mailbox}{mailbox_tag}", domain),
        )
        customer = TrueCustomer(
            kind="organization",
            country=country,
            state=CustomerState("", contact),
            core=core,
            legal_form=legal_form,
            tax_id=self.tax_id(country),
            domain=domain,
        )
        if rng.random() < NOISE.relocated:
            customer.previous = customer.state
            customer.state = CustomerState(
                "",
                Contact(
                    self.address(country, organization=True),
                    self.phone(country, mobile=False),
                    contact.email,
                ),
            )
            customer.changed_at = _moment(rng, date(2023, 1, 1), date(2025, 10, 1))
        return customer

    def sibling_group(self) -> list[TrueCustomer]:
        """Companies of one brand in different countries: same trading name and web domain,
        different legal form, tax id and address. The hardest negatives for name matching.
        With NOISE.group_parent, their holding is a customer too and the parent of each."""
        rng = self.rng
        countries = rng.sample(list(COUNTRIES.values()), rng.randint(2, 4))
        core, brand, industry = self.organization_core(countries[0])
        domain = self.domain(brand, industry, COUNTRIES["US"])
        members = [
            self.organization(
                country, core=core, domain=domain, mailbox_tag=f".{country.code.lower()}"
            )
            for country in countries
        ]
        if rng.random() < NOISE.group_parent:
            home = countries[0]
            parent_core = f"{brand} {rng.choice(GROUP_WORDS)}"
            if parent_core.casefold() in self.cores:
                parent_core = f"{brand} {industry} Holdings"
            self.cores.add(parent_core.casefold())
            parent = self.organization(home, core=parent_core, domain=domain)
            for member in members:
                member.parent = parent
            members.insert(0, parent)
        return members

    def brand_family(self) -> list[TrueCustomer]:
        """Companies of one brand in one country: the brand in every name but another trade
        ("Vantor Logistics", "Vantor Software"), one web domain, each its own tax ID. With
        NOISE.shared_office they sit at the first one's address (a group's subsidiaries at
        its head office), with NOISE.shared_switchboard behind its phone number as well."""
        rng = self.rng
        country = self.country()
        core, brand, industry = self.organization_core(country)
        domain = self.domain(brand, industry, country)
        first = self.organization(country, core=core, domain=domain)
        members = [first]
        office = rng.random() < NOISE.shared_office
        switchboard = office and rng.random() < NOISE.shared_switchboard
        trades = [i for i in INDUSTRIES if i != industry]
        for trade in rng.sample(trades, rng.randint(1, 2)):
            member_core = f"{brand} {trade}"
            if member_core.casefold() in self.cores:
                continue
            self.cores.add(member_core.casefold())
            tag = f".{_slug(trade)[:6]}"
            member = self.organization(country, core=member_core, domain=domain, mailbox_tag=tag)
            if office:
                contact = member.state.contact
                member.state = CustomerState(
                    "",
                    Contact(
                        first.state.contact.address,
                        first.state.contact.phone if switchboard else contact.phone,
                        contact.email,
                    ),
                )
                member.previous, member.changed_at = None, None
                member.parent = first
            members.append(member)
        return members

    # --- persons

    def person_email(self, country: Country, given: str, family: str, born: date) -> str:
        rng = self.rng
        first, last = _slug(given), _slug(family)
        local = _pick(
            rng,
            (
                (f"{first}.{last}", 5),
                (f"{first[:1]}{last}", 3),
                (f"{first}{last}{born.year % 100:02d}", 2),
                (f"{first}_{last}", 1),
                (f"{last}.{first}", 1),
                (f"{first}.{last}{rng.randint(1, 99)}", 1),
            ),
        )
        return self.unique_email(local, rng.choice(country.free_mail))

    def person(self, country: Country) -> TrueCustomer:
        rng, fake = self.rng, self.fakers[country.code]
        given, family = fake.first_name(), fake.last_name()
        born = BASE_DATE - timedelta(days=rng.randint(18 * 365, 85 * 365))
        return self._person(country, given, family, born)

    def _person(
        self,
        country: Country,
        given: str,
        family: str,
        born: date,
        *,
        address: Address | None = None,
        phone: Phone | None = None,
    ) -> TrueCustomer:
        rng = self.rng
        contact = Contact(
            address or self.address(country, organization=False),
            phone or self.phone(country, mobile=rng.random() < 0.65),
            self.person_email(country, given, family, born),
        )
        customer = TrueCustomer(
            kind="person",
            country=country,
            state=CustomerState(family, contact),
            given_name=given,
            date_of_birth=born,
        )
        self._life_event(customer)
        return customer

    def _life_event(self, person: TrueCustomer) -> None:
        """At most one change mid-history (move, new e-mail, marriage); older copies keep the
        previous state, so the sources disagree the way real ones do."""
        rng = self.rng
        roll = rng.random()
        old = person.state
        contact = old.contact
        country = person.country
        born = person.date_of_birth or BASE_DATE
        if roll < NOISE.moved:
            new_contact = Contact(
                self.address(country, organization=False),
                self.phone(country, mobile=True) if rng.random() < 0.7 else contact.phone,
                self.person_email(country, person.given_name, old.family_name, born)
                if rng.random() < 0.5
                else contact.email,
            )
            new_state = CustomerState(old.family_name, new_contact)
        elif roll < NOISE.moved + NOISE.changed_email:
            email = self.person_email(country, person.given_name, old.family_name, born)
            new_state = CustomerState(
                old.family_name, Contact(contact.address, contact.phone, email)
            )
        elif roll < NOISE.moved + NOISE.changed_email + NOISE.renamed:
            family = self.fakers[country.code].last_name()
            email = contact.email
            if rng.random() < 0.5:
                email = self.person_email(country, person.given_name, family, born)
            new_state = CustomerState(family, Contact(contact.address, contact.phone, email))
        else:
            return
        person.previous, person.state = old, new_state
        person.changed_at = _moment(rng, date(2023, 1, 1), date(2025, 10, 1))

    def family_member(self, relative: TrueCustomer) -> TrueCustomer:
        """Same household: address, home phone and family name shared; given name, date of
        birth and e-mail differ. Must not be matched with the relative."""
        rng, fake = self.rng, self.fakers[relative.country.code]
        given = fake.first_name()
        while given == relative.given_name:
            given = fake.first_name()
        assert relative.date_of_birth is not None
        born = relative.date_of_birth + timedelta(
            days=rng.choice((-1, 1)) * rng.randint(400, 12000)
        )
        born = min(born, BASE_DATE - timedelta(days=18 * 365))
        contact = relative.state.contact
        phone = contact.phone if rng.random() < 0.7 else None
        return self._person(
            relative.country,
            given,
            relative.state.family_name,
            born,
            address=contact.address,
            phone=phone,
        )

    def twin(self, other: TrueCustomer) -> TrueCustomer:
        """Same given and family name as `other`, in the same city; another date of birth,
        street, phone and e-mail address."""
        assert other.date_of_birth is not None
        born = other.date_of_birth + timedelta(
            days=self.rng.choice((-1, 1)) * self.rng.randint(30, 9000)
        )
        born = min(born, BASE_DATE - timedelta(days=18 * 365))
        home = other.state.contact.address
        street = self.address(other.country, organization=False)
        address = Address(street.line1, street.line2, home.city, home.region, home.postal_code)
        return self._person(
            other.country, other.given_name, other.state.family_name, born, address=address
        )

    def namesake(self, other: TrueCustomer) -> TrueCustomer:
        """Same given and family name as `other`, everything else different."""
        born = BASE_DATE - timedelta(days=self.rng.randint(18 * 365, 85 * 365))
        return self._person(other.country, other.given_name, other.state.family_name, born)


SYSTEM_COUNT_WEIGHTS = ((1, 18), (2, 34), (3, 28), (4, 13), (5, 7))
ORGANIZATION_SYSTEM_WEIGHTS = {"crm": 10, "erp": 7, "billing": 7, "success": 4, "support": 4}
PERSON_SYSTEM_WEIGHTS = {"crm": 6, "erp": 3, "billing": 8, "success": 2, "support": 7}
DUPLICATE_SYSTEM_WEIGHTS = {"crm": 5, "support": 4, "billing": 1, "erp": 1, "success": 1}


def _choose_systems(rng: random.Random, kind: str, forced: tuple[str, ...] = ()) -> tuple[str, ...]:
    """1–5 systems, skewed to 2–3; organizations live in crm more, persons in billing/support."""
    count = _pick(rng, SYSTEM_COUNT_WEIGHTS)
    weights = ORGANIZATION_SYSTEM_WEIGHTS if kind == "organization" else PERSON_SYSTEM_WEIGHTS
    chosen = list(forced)
    while len(chosen) < count:
        chosen.append(_pick(rng, [(s, w) for s, w in weights.items() if s not in chosen]))
    return tuple(system for system in SYSTEMS if system in chosen)


def _build_customers(rng: random.Random, truths: _Truths, count: int) -> list[TrueCustomer]:
    organizations_wanted = round(count * ORGANIZATION_SHARE) if count > 1 else count
    customers: list[TrueCustomer] = []
    groups = round(organizations_wanted * NOISE.sibling_group) if organizations_wanted >= 10 else 0
    if organizations_wanted >= 10:
        groups = max(groups, 1)
    for _ in range(groups):
        if organizations_wanted - len(customers) < 5:
            break
        members = truths.sibling_group()
        for member in members:
            member.systems = _choose_systems(rng, member.kind, forced=("crm",))
        customers.extend(members)
    families = round(organizations_wanted * NOISE.brand_family) if organizations_wanted >= 20 else 0
    for _ in range(families):
        if organizations_wanted - len(customers) < 5:
            break
        members = truths.brand_family()
        for member in members:
            member.systems = _choose_systems(rng, member.kind)
        customers.extend(members)
    while len(customers) < organizations_wanted:
        organization = truths.organization(truths.country())
        organization.systems = _choose_systems(rng, organization.kind)
        customers.append(organization)
    # A billing provider's mailbox, shared by unrelated small customers it invoices for.
    provider = f"{rng.choice(('invoices', 'billing', 'ap'))}@{rng.choice(PROVIDER_DOMAINS)}"
    for organization in customers:
        if organization.parent is None and rng.random() < NOISE.provider_mailbox:
            organization.shared_mailbox = provider

    persons: list[TrueCustomer] = []
    while len(customers) + len(persons) < count:
        roll = rng.random()
        if persons and roll < NOISE.family_member:
            person = truths.family_member(rng.choice(persons))
        elif persons and roll < NOISE.family_member + NOISE.namesake:
            person = truths.namesake(rng.choice(persons))
        elif persons and roll < NOISE.family_member + NOISE.namesake + NOISE.twin:
            person = truths.twin(rng.choice(persons))
        else:
            person = truths.person(truths.country())
        person.systems = _choose_systems(rng, person.kind)
        persons.append(person)
    customers.extend(persons)

    rng.shuffle(customers)
    width = max(5, len(str(len(customers))))
    for number, customer in enumerate(customers, start=1):
        customer.true_id = f"customer-{number:0{width}d}"
    duplicates = max(2, round(len(customers) * NOISE.in_system_duplicate))
    for customer in rng.sample(customers, min(duplicates, len(customers))):
        weights = [(s, DUPLICATE_SYSTEM_WEIGHTS[s]) for s in customer.systems]
        customer.duplicated_in = (_pick(rng, weights),)
    return customers


def _build_products(rng: random.Random, truths: _Truths, count: int) -> list[TrueProduct]:
    fake = truths.fakers["US"]
    products: list[TrueProduct] = []
    names: set[str] = set()
    skus: set[tuple[str, int]] = set()
    gtins: set[str] = set()
    width = max(5, len(str(count)))
    while len(products) < count:
        family, prefix, unit, bases, (low, high) = rng.choice(PRODUCT_FAMILIES)
        base = rng.choice(bases)
        if unit == "USER":
            name = f"{base} {rng.choice(PRODUCT_TIERS)}"
        elif family == "Hardware":
            name = f"{base} {rng.choice('XSM')}{rng.randint(1, 9) * 100}"
        elif family == "Services":
            name = f"{base} – {rng.choice((10, 20, 40, 80, 160))} Hours"
        elif family == "Training":
            name = f"{base} – {rng.randint(1, 5)} Days"
        elif family == "Support":
            name = f"{base} – {rng.choice((1, 2, 3))} Year"
        else:
            name = f"{base} v{rng.randint(2, 9)}"
        if name in names:
            name = f"{name} ({rng.choice(('EMEA', 'APAC', 'Americas', 'Edu', 'Gov'))})"
            if name in names:
                continue
        sku = (prefix, rng.randint(1000, 9999))
        if sku in skus:
            continue
        gtin = ""
        if family in ("Hardware", "Connectors") or rng.random() < 0.4:
            gtin = _gtin13("40" + _digits(rng, 10))
            if gtin in gtins:
                continue
            gtins.add(gtin)
        names.add(name)
        skus.add(sku)
        price = rng.randrange(low, high, 100) - (100 if rng.random() < 0.5 else 0) + 99
        systems = tuple(
            s for s, p in (("erp", 0.85), ("crm", 0.85), ("billing", 0.75)) if rng.random() < p
        ) or (rng.choice(("erp", "crm", "billing")),)
        products.append(
            TrueProduct(
                true_id=f"product-{len(products) + 1:0{width}d}",
                sku_family=prefix,
                sku_number=sku[1],
                name=name,
                description=f"{name}. {fake.catch_phrase()}.",
                family=family,
                gtin=gtin,
                unit_of_measure=unit,
                price_cents=price,
                systems=systems,
            )
        )
    in_crm = [product for product in products if "crm" in product.systems]
    for product in rng.sample(in_crm, min(len(in_crm), max(1, round(len(products) * 0.03)))):
        product.duplicated_in = ("crm",)
    return products


CONTRACT_COUNT_WEIGHTS = ((0, 25), (1, 40), (2, 25), (3, 10))  # mean 1.2 per organization
CONTRACT_SYSTEM_CHANCE = {"crm": 0.9, "erp": 0.75, "billing": 0.8}


def _contract_status(rng: random.Random, start: date, end: date) -> str:
    if start > BASE_DATE:
        return "draft"
    if end < BASE_DATE:
        return "cancelled" if rng.random() < 0.1 else "expired"
    roll = rng.random()
    return "suspended" if roll < 0.03 else "cancelled" if roll < 0.06 else "active"


def _build_contracts(rng: random.Random, customers: list[TrueCustomer]) -> list[TrueContract]:
    contracts: list[TrueContract] = []
    for customer in customers:
        if customer.kind != "organization":
            continue
        available = [s for s in ("crm", "erp", "billing") if s in customer.systems]
        for _ in range(_pick(rng, CONTRACT_COUNT_WEIGHTS)):
            if not available:
                break
            systems = tuple(s for s in available if rng.random() < CONTRACT_SYSTEM_CHANCE[s])
            systems = systems or (rng.choice(available),)
            start = date(2021, 1, 1) + timedelta(days=rng.randrange(5 * 365 + 90))
            end = _shift_months(start, rng.choice((12, 12, 24, 36))) - timedelta(days=1)
            contract = TrueContract(
                true_id="",
                year=start.year,
                sequence=0,
                customer=customer,
                start=start,
                end=end,
                status=_contract_status(rng, start, end),
                value_cents=rng.randrange(5_000, 500_000) * 100,
                systems=systems,
            )
            for system in systems:
                copies = 1 + customer.duplicated_in.count(system)
                contract.customer_copy[system] = 1 if copies > 1 and rng.random() < 0.2 else 0
            contracts.append(contract)
    rng.shuffle(contracts)
    width = max(5, len(str(len(contracts))))
    for number, contract in enumerate(contracts, start=1):
        contract.true_id = f"contract-{number:0{width}d}"
        contract.sequence = number
    return contracts


def _build_entitlements(
    rng: random.Random, contracts: list[TrueContract], products: list[TrueProduct]
) -> list[TrueEntitlement]:
    entitlements: list[TrueEntitlement] = []
    for contract in contracts:
        if contract.status == "draft":
            continue  # nothing is provisioned before the contract starts
        for product in rng.sample(products, min(len(products), rng.randint(1, 3))):
            systems: list[str] = []
            for system in ("billing", "erp"):
                if system in contract.systems and system in product.systems:
                    systems.append(system)
            if "success" in contract.customer.systems and rng.random() < 0.85:
                systems.append("success")
            if not systems:
                continue
            if product.unit_of_measure in ("USER", "SEAT"):
                quantity = rng.choice((5, 10, 10, 25, 50, 100, 250, 500))
            elif product.unit_of_measure == "HOUR":
                quantity = rng.choice((10, 20, 40, 80, 160))
            elif product.unit_of_measure == "YEAR":
                quantity = 1
            else:
                quantity = rng.randint(1, 20)
            start = contract.start
            if rng.random() < 0.3:
                start = min(contract.end, start + timedelta(days=rng.randint(1, 90)))
            entitlements.append(
                TrueEntitlement(
                    true_id="",
                    contract=contract,
                    product=product,
                    quantity=quantity,
                    start=start,
                    end=contract.end,
                    status=contract.status,  # draft contracts have no entitlements
                    systems=tuple(s for s in ENTITY_SYSTEMS["entitlement"] if s in systems),
                )
            )
    rng.shuffle(entitlements)
    width = max(5, len(str(len(entitlements))))
    for number, entitlement in enumerate(entitlements, start=1):
        entitlement.true_id = f"entitlement-{number:0{width}d}"
    return entitlements


# --------------------------------------------------------------------------- rendering copies


class _Renderer:
    """Writes one copy of a truth the way one system would hold it, noise included."""

    def __init__(self, rng: random.Random, truths: _Truths):
        self.rng = rng
        self.truths = truths

    def chance(self, rate: float) -> bool:
        return self.rng.random() < rate

    # --- customers

    def customer(self, customer: TrueCustomer, system: str, *, sparse: bool) -> SourceRow:
        rng, style = self.rng, STYLES[system]
        moment = _moment(rng, HISTORY_START, BASE_DATE)
        state = customer.state_at(moment)
        country = customer.country
        contact = state.contact
        organization = customer.kind == "organization"
        ascii_only = self.chance(style.ascii_only)
        kind_words = style.kind_words if self.chance(style.kind_word_rate) else None
        values: dict[str, str] = {
            "kind": kind_words[0 if organization else 1] if kind_words else customer.kind
        }
        if organization:
            values["name"] = self.organization_name(customer, style, ascii_only)
            values["tax_id"] = self.tax_id(customer)
            values["website"] = self.website(customer.domain)
        else:
            given, family, name = self.person_name(customer, state, system, style, ascii_only)
            values.update(given_name=given, family_name=family, name=name)
            assert customer.date_of_birth is not None
            values["date_of_birth"] = self.birth_date(customer.date_of_birth, style)
        values["email"] = self.email(customer, contact.email, system)
        if customer.shared_mailbox and system in ("billing", "support"):
            values["email"] = customer.shared_mailbox
        address = contact.address
        line1 = address.line1
        if self.chance(NOISE.abbreviation):
            line1 = _abbreviate(rng, line1)
        if self.chance(NOISE.street_typo):
            line1 = _typo(rng, line1)
        line2 = address.line2
        if line2 and self.chance(0.1):
            line1, line2 = f"{line1}, {line2}", ""
        city = _typo(rng, address.city) if self.chance(NOISE.city_typo) else address.city
        upper = self.chance(style.upper_case)
        if upper:
            line1, line2, city = line1.upper(), line2.upper(), city.upper()
        if ascii_only:
            line1, line2, city = _ascii(line1), _ascii(line2), _ascii(city)
        values.update(address_line1=line1, address_line2=line2, city=city)
        values["postal_code"] = self.postal_code(country, address.postal_code, system)
        region_code, region_name = address.region
        values["region"] = region_code if self.chance(0.6) else region_name
        values["country"] = country.spellings[_pick(rng, style.country_formats)]

        fill_factor = 0.6 if sparse else 1.0
        columns = CARRIED_COLUMNS[(system, "customer")]
        for column in list(values):
            if column not in columns:
                del values[column]
            elif (
                column not in ("kind", "name")
                and values[column]
                and not self.chance(style.fill.get(column, 0.97) * fill_factor)
            ):
                values[column] = ""
        if "phone" in columns:
            phone_style = _pick(rng, style.phone_formats)
            if not values.get("country") and phone_style != "e164" and self.chance(0.75):
                phone_style = "international"  # typed with +CC when no country is on file
            phone = _format_phone(country, contact.phone, phone_style)
            filled = self.chance(style.fill.get("phone", 0.97) * fill_factor)
            values["phone"] = phone if filled else ""
            if system in ("billing", "support") and self.chance(NOISE.placeholder_phone):
                values["phone"] = rng.choice(PLACEHOLDER_PHONES)
        row = SourceRow(customer.true_id, values, moment)
        linked = customer.parent is not None and "parent_key" in columns
        if linked and not self.chance(NOISE.parent_link_missing):
            assert customer.parent is not None
            row.references["parent_key"] = ("customer", customer.parent.true_id, 0)
        return row

    def organization_name(
        self, customer: TrueCustomer, style: SystemStyle, ascii_only: bool
    ) -> str:
        rng = self.rng
        core = customer.core
        if self.chance(NOISE.abbreviation):
            core = _abbreviate(rng, core)
        if " & " in core and self.chance(NOISE.ampersand_swap):
            core = core.replace(" & ", " and ")
        spellings = LEGAL_FORMS[customer.legal_form]
        legal_form = spellings[0]
        if self.chance(NOISE.legal_form_variant):
            legal_form = rng.choice(spellings[1:])
        # ", Inc." hangs on the name; every other spelling is a separate word (or nothing).
        name = core + legal_form if legal_form.startswith(",") else f"{core} {legal_form}".strip()
        if self.chance(NOISE.name_typo):
            name = _typo(rng, name)
        name = _recase(rng, name, style.upper_case)
        return _ascii(name) if ascii_only else name

    def person_name(
        self,
        customer: TrueCustomer,
        state: CustomerState,
        system: str,
        style: SystemStyle,
        ascii_only: bool,
    ) -> tuple[str, str, str]:
        rng = self.rng
        given, family = customer.given_name, state.family_name
        if given in NICKNAMES and self.chance(NOISE.nickname):
            given = rng.choice(NICKNAMES[given])
        if self.chance(NOISE.name_typo):
            if self.chance(0.5):
                given = _typo(rng, given)
            else:
                family = _typo(rng, family)
        if ascii_only:
            given, family = _ascii(given), _ascii(family)
        if self.chance(style.upper_case):
            family = family.upper()
        name = f"{given} {family}"
        if system == "erp" and self.chance(0.3):
            name = f"{family}, {given}"
        elif self.chance(0.02):
            name = name.lower()
        return given, family, name

    def birth_date(self, born: date, style: SystemStyle) -> str:
        if born.day <= 12 and born.day != born.month and self.chance(NOISE.day_month_swap):
            born = date(born.year, born.day, born.month)
        return _format_date(born, _pick(self.rng, style.date_formats))

    def tax_id(self, customer: TrueCustomer) -> str:
        rng, tax_id, code = self.rng, customer.tax_id, customer.country.code
        roll = rng.random()
        if roll < 0.7:
            written = tax_id
        elif roll < 0.9:  # spaced the way it is printed on invoices
            compact = tax_id.replace("-", "").replace(" ", "")
            written = {
                "US": compact,
                "GB": f"{compact[:2]} {compact[2:5]} {compact[5:9]} {compact[9:]}",
                "DE": f"{compact[:2]} {compact[2:5]} {compact[5:8]} {compact[8:]}",
                "FR": f"{compact[:2]} {compact[2:4]} {compact[4:7]} {compact[7:10]} {compact[10:]}",
                "NL": f"{compact[:2]}{compact[2:6]}.{compact[6:8]}.{compact[8:11]}.{compact[11:]}",
                "CA": f"{compact[:9]} {compact[9:11]} {compact[11:]}",
                "AU": compact,
            }[code]
        else:  # without the country prefix or programme suffix
            written = {
                "US": tax_id,
                "CA": tax_id[:9],
                "AU": f"ABN {tax_id}",
            }.get(code, tax_id[2:])
        if self.chance(0.01):
            digits = [
                i for i, ch in enumerate(written[:-1]) if ch.isdigit() and written[i + 1].isdigit()
            ]
            if digits:
                i = rng.choice(digits)
                written = written[:i] + written[i + 1] + written[i] + written[i + 2 :]
        return written

    def website(self, domain: str) -> str:
        return _pick(
            self.rng,
            (
                (f"https://www.{domain}", 4),
                (f"www.{domain}", 3),
                (domain, 2),
                (f"http://www.{domain}/", 1),
                (f"https://{domain}/", 1),
            ),
        )

    def email(self, customer: TrueCustomer, email: str, system: str) -> str:
        rng = self.rng
        if customer.kind == "organization" and self.chance(NOISE.organization_mailbox):
            if system == "billing":
                email = f"{rng.choice(('billing', 'accounts', 'invoices', 'ap'))}@{customer.domain}"
            elif system in ("support", "success"):
                fake = self.truths.fakers[customer.country.code]
                person = f"{_slug(fake.first_name())}.{_slug(fake.last_name())}"
                email = f"{person}@{customer.domain}"
        if self.chance(NOISE.email_typo):
            local, _, domain = email.partition("@")
            if self.chance(0.7):
                local = _typo(rng, local)
            else:
                domain = _typo(rng, domain)
            email = f"{local}@{domain}"
        if self.chance(NOISE.email_case):
            local, _, domain = email.partition("@")
            email = f"{'.'.join(p.capitalize() for p in local.split('.'))}@{domain.capitalize()}"
        return email

    def postal_code(self, country: Country, postal_code: str, system: str) -> str:
        if country.code == "US" and "-" in postal_code and self.chance(0.5):
            postal_code = postal_code.split("-")[0]
        elif country.code in ("GB", "CA", "NL") and self.chance(0.3):
            postal_code = postal_code.replace(" ", "")
        if postal_code.startswith("0") and system in ("erp", "billing") and self.chance(0.2):
            postal_code = postal_code.lstrip("0")  # spreadsheet round-trip ate the zero
        if self.chance(0.03):
            postal_code = postal_code.lower()
        return postal_code

    # --- products

    def product(self, product: TrueProduct, system: str) -> SourceRow:
        rng = self.rng
        moment = _moment(rng, HISTORY_START, BASE_DATE)
        family, number = product.sku_family, product.sku_number
        sku_formats = {
            "erp": ((f"{family}-{number:04d}", 9), (f"{family}{number:04d}", 1)),
            "crm": ((f"{family.lower()}{number:04d}", 5), (f"{family}{number:04d}", 2),
                    (f"{family}-{number:04d}", 3)),
            "billing": ((f"{family}-{number:04d}", 6), (f"{family.lower()}-{number:04d}", 2),
                        (f"{family}{number:04d}", 2)),
        }  # fmt: skip
        name, description = product.name, product.description
        price = product.price_cents
        currency = "USD"
        unit = product.unit_of_measure
        gtin = product.gtin
        if system == "erp":
            name = name.replace("–", "-")
            if self.chance(0.4):
                name = name.upper()
            name = name[:30].rstrip()
            description = "" if self.chance(0.4) else description
            if gtin and self.chance(0.1):
                gtin = "0" + gtin  # stored as GTIN-14
            if self.chance(0.5):
                currency, price = "EUR", round(price * USD_TO_EUR)
        elif system == "crm":
            if self.chance(0.2):
                name = f"{product.family}: {name}"
        else:
            if self.chance(0.3):
                name = name.replace("–", "-")
            description = "" if self.chance(0.3) else description.split(". ")[0]
            unit = unit.lower()
            currency = "usd"
        if system != "erp" and self.chance(NOISE.changed_price):
            price = int(round(price * rng.uniform(0.85, 1.15), -2)) - 1
        if self.chance(NOISE.name_typo / 2):
            name = _typo(rng, name)
        values = {
            "sku": _pick(rng, sku_formats[system]),
            "name": name,
            "description": description,
            "family": product.family.upper() if system == "erp" else product.family,
            "gtin": gtin,
            "unit_of_measure": unit,
            "list_price": _money(max(price, 100)),
            "currency": currency,
        }
        return SourceRow(product.true_id, values, moment)

    # --- contracts and entitlements

    def _date(self, value: date, system: str) -> str:
        return _format_date(value, _pick(self.rng, STYLES[system].date_formats))

    def _stale(self, status: str, choices: tuple[str, ...]) -> str:
        stale = {"active": "suspended", "expired": "active", "cancelled": "active"}
        if self.chance(NOISE.stale_status):
            return stale.get(status, self.rng.choice(choices))
        return status

    def contract(self, contract: TrueContract, system: str) -> SourceRow:
        rng = self.rng
        year, sequence = contract.year, contract.sequence
        numbers = {
            "crm": ((f"C-{year}-{sequence:05d}", 9), (f"C-{year}-{sequence}", 1)),
            "erp": ((f"C{year}-{sequence}", 8), (f"C{year}{sequence:05d}", 2)),
            "billing": ((f"C-{year}-{sequence:05d}", 6), (f"c-{year}-{sequence:05d}", 2),
                        (f"{year}-{sequence:05d}", 2)),
        }  # fmt: skip
        start, end = contract.start, contract.end
        if self.chance(NOISE.shifted_date):
            start += timedelta(days=rng.choice((-1, 1)) * rng.randint(1, 14))
        value = contract.value_cents
        if self.chance(NOISE.changed_amount):
            value = int(round(value * rng.uniform(0.8, 1.2), -2))
        status = self._stale(contract.status, ENTITIES["contract"].attribute("status").choices)
        if system == "billing" and status == "cancelled":
            status = "canceled"  # the billing provider's spelling
        total = _money(value)
        if system == "erp" and self.chance(0.5):
            whole, cents = total.split(".")
            total = f"{int(whole):,}".replace(",", ".") + f",{cents}"
        values = {
            "contract_number": _pick(rng, numbers[system]),
            "status": status,
            "start_date": self._date(start, system),
            "end_date": ""
            if system == "billing" and self.chance(0.05)
            else self._date(end, system),
            "currency": contract.currency.lower() if system == "billing" else contract.currency,
            "total_value": total,
        }
        moment = _moment(rng, max(HISTORY_START, start - timedelta(days=30)), BASE_DATE)
        row = SourceRow(contract.true_id, values, moment)
        row.references["customer_key"] = (
            "customer",
            contract.customer.true_id,
            contract.customer_copy[system],
        )
        return row

    def entitlement(self, entitlement: TrueEntitlement, system: str) -> SourceRow:
        rng = self.rng
        start = entitlement.start
        if self.chance(NOISE.shifted_date):
            start += timedelta(days=rng.randint(1, 10))
        quantity = entitlement.quantity
        if self.chance(NOISE.changed_quantity):
            quantity = max(1, quantity + rng.choice((-1, 1)) * rng.randint(1, 5))
        choices = ENTITIES["entitlement"].attribute("status").choices
        values = {
            "status": self._stale(entitlement.status, choices),
            "quantity": str(quantity),
            "start_date": self._date(start, system),
            "end_date": self._date(entitlement.end, system),
        }
        moment = _moment(rng, max(HISTORY_START, start - timedelta(days=7)), BASE_DATE)
        row = SourceRow(entitlement.true_id, values, moment)
        contract = entitlement.contract
        customer_copy = contract.customer_copy.get(system, 0)
        row.references["customer_key"] = ("customer", contract.customer.true_id, customer_copy)
        if system != "success":
            row.references["contract_key"] = ("contract", contract.true_id, 0)
            row.references["product_key"] = ("product", entitlement.product.true_id, 0)
        return row


# ------------------------------------------------------------------------------- source keys


class _SourceKeys:
    """Mints source keys in each system's own style, unique per (system, entity).

    crm: Salesforce 15-character ids with the object prefix (001 account, 01t product, 800
    contract); erp: ascending numbers with gaps; billing: Stripe-like prefixed ids; success:
    "acc-"/"ent-" hex ids; support: 12-digit ascending numbers.
    """

    SALESFORCE_PREFIX = {"customer": "001", "product": "01t", "contract": "800"}
    STRIPE_PREFIX = {
        "customer": "cus_",
        "product": "prod_",
        "contract": "sub_",
        "entitlement": "si_",
    }
    ERP_FIRST = {
        "customer": 100_000,
        "product": 400_000,
        "contract": 4_600_000,
        "entitlement": 7_000_000,
    }
    SUCCESS_PREFIX = {"customer": "acc-", "entitlement": "ent-"}

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.issued: set[str] = set()
        self.counters: dict[tuple[str, str], int] = {}

    def mint(self, system: str, entity: str) -> str:
        rng = self.rng
        if system in ("erp", "support"):
            first = self.ERP_FIRST[entity] if system == "erp" else 360_000_000_000
            counter = self.counters.get((system, entity), first)
            counter += rng.randint(1, 3) if system == "erp" else rng.randint(1, 40)
            self.counters[(system, entity)] = counter
            return str(counter)
        while True:
            if system == "crm":
                key = self.SALESFORCE_PREFIX[entity] + "5g00000" + self._base62(5)
            elif system == "billing":
                key = self.STRIPE_PREFIX[entity] + self._base62(14)
            else:
                key = self.SUCCESS_PREFIX[entity] + f"{rng.getrandbits(32):08x}"
            if key not in self.issued:
                self.issued.add(key)
                return key

    def _base62(self, length: int) -> str:
        return "".join(self.rng.choices(_BASE62, k=length))


# ---------------------------------------------------------------------------- broken rows

# Unparseable dates the loader must flag (the rows themselves are real and in the ground truth).
BROKEN_DATES = (
    ("crm", "customer", "date_of_birth", "31/02/2020"),
    ("erp", "contract", "start_date", "not-a-date"),
    ("billing", "entitlement", "end_date", "2024-13-45"),
)


def _break_dates(rng: random.Random, tables: dict[tuple[str, str], list[SourceRow]]) -> None:
    """Plant BROKEN_DATES; where a planned table is empty (tiny sizes), use another table with
    a date column so at least two broken dates always exist."""
    placed = 0
    for system, entity, column, value in BROKEN_DATES:
        candidates = tables.get((system, entity), [])
        if entity == "customer":
            candidates = [
                row for row in candidates if row.values.get("kind") in ("person", "individual")
            ]
        if not candidates:
            continue
        rng.choice(candidates).values[column] = value
        placed += 1
    if placed >= 2:
        return
    for (system, entity), rows in tables.items():
        if placed >= 2:
            break
        for column in ("start_date", "date_of_birth"):
            if rows and column in CARRIED_COLUMNS[(system, entity)]:
                rows[0].values[column] = "not-a-date"
                placed += 1
                break


def _add_keyless_rows(
    rng: random.Random,
    tables: dict[tuple[str, str], list[SourceRow]],
    renderer: _Renderer,
    customers: list[TrueCustomer],
) -> None:
    """Two rows without a source key (an agent's half-filled form, a failed export line): the
    loader rejects them, so they are written but left out of the ground truth."""
    for system in ("support", "billing"):
        customer = rng.choice(customers)
        row = renderer.customer(customer, system, sparse=True)
        row.true_id = None
        row.references.clear()
        rows = tables[(system, "customer")]
        rows.insert(rng.randint(0, len(rows)), row)


# ---------------------------------------------------------------------------------- pipeline


def generate_demo_data(*, output_dir: Path, seed: int = 42, customers: int = 1000) -> DemoManifest:
    """Write the demo CSVs, ground_truth.csv and manifest.json into `output_dir`.

    Sizes scale with `customers`: about max(30, customers/20) products, 1.2 contracts per
    organization and 1–3 entitlements per contract, each copied into 1–5 systems.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    output_dir = Path(output_dir)
    rng = random.Random(seed)
    truths = _Truths(rng)
    renderer = _Renderer(rng, truths)

    true_customers = _build_customers(rng, truths, customers)
    products = _build_products(rng, truths, max(30, round(customers / 20)))
    contracts = _build_contracts(rng, true_customers)
    entitlements = _build_entitlements(rng, contracts, products)

    tables: dict[tuple[str, str], list[SourceRow]] = {
        (system, entity): [] for entity, systems in ENTITY_SYSTEMS.items() for system in systems
    }
    for customer in true_customers:
        for system in customer.systems:
            tables[(system, "customer")].append(renderer.customer(customer, system, sparse=False))
        for system in customer.duplicated_in:
            tables[(system, "customer")].append(renderer.customer(customer, system, sparse=True))
    for product in products:
        for system in product.systems + product.duplicated_in:
            tables[(system, "product")].append(renderer.product(product, system))
    for contract in contracts:
        for system in contract.systems:
            tables[(system, "contract")].append(renderer.contract(contract, system))
    for entitlement in entitlements:
        for system in entitlement.systems:
            tables[(system, "entitlement")].append(renderer.entitlement(entitlement, system))

    # Keys are minted after shuffling, so row order and sequential keys reveal nothing.
    keys = _SourceKeys(rng)
    copies: dict[tuple[str, str, str], list[SourceRow]] = {}
    for (system, entity), rows in tables.items():
        rng.shuffle(rows)
        for row in rows:
            row.source_key = keys.mint(system, entity)
            assert row.true_id is not None
            copies.setdefault((entity, row.true_id, system), []).append(row)
    for (system, _entity), rows in tables.items():
        for row in rows:
            for column, (target, true_id, copy_index) in row.references.items():
                targets = copies.get((target, true_id, system), [])
                if targets:
                    target_row = targets[min(copy_index, len(targets) - 1)]
                    row.values[column] = target_row.source_key
                # else: the referenced thing is not in this system, the cell stays blank

    _break_dates(rng, tables)
    _add_keyless_rows(rng, tables, renderer, true_customers)
    return _write(output_dir, seed, tables)


def _write(
    output_dir: Path, seed: int, tables: dict[tuple[str, str], list[SourceRow]]
) -> DemoManifest:
    output_dir.mkdir(parents=True, exist_ok=True)
    files: list[DemoFile] = []
    with (output_dir / GROUND_TRUTH_FILE).open("w", encoding="utf-8", newline="") as truth_file:
        truth_writer = csv.writer(truth_file)
        truth_writer.writerow(("entity", "source_system", "source_key", "true_id"))
        for entity, systems in ENTITY_SYSTEMS.items():
            for system in systems:
                rows = tables[(system, entity)]
                columns = file_columns(system, entity)
                path = f"{system}__{entity}.csv"
                native_path = f"{system}__{entity}.ndjson"
                native = NativeWriter(system, entity)
                with (
                    (output_dir / path).open("w", encoding="utf-8", newline="") as handle,
                    (output_dir / native_path).open("w", encoding="utf-8") as native_handle,
                ):
                    writer = csv.writer(handle)
                    writer.writerow(columns)
                    for row in rows:
                        cells = dict(row.values)
                        cells["source_key"] = row.source_key
                        cells["source_updated_at"] = _stamp(row.updated_at)
                        writer.writerow([cells.get(column, "") for column in columns])
                        record = native.record({c: cells.get(c, "") for c in columns})
                        native_handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                        if row.true_id is not None:
                            truth_writer.writerow((entity, system, row.source_key, row.true_id))
                files.append(
                    DemoFile(
                        path=path,
                        system=system,
                        entity=entity,
                        rows=len(rows),
                        native=native_path,
                        mapping=mapping_name(system, entity),
                    )
                )
    manifest = DemoManifest(seed=seed, files=tuple(files), ground_truth=GROUND_TRUTH_FILE)
    (output_dir / MANIFEST_FILE).write_text(
        json.dumps(manifest.as_json(), indent=2) + "\n", encoding="utf-8"
    )
    return manifest
