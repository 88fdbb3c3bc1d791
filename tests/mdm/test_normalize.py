"""Normalizers per attribute kind and `normalize_record` (pure functions, no database)."""

import datetime
from decimal import Decimal

import pytest

from mdm.entities import CONTRACT, CUSTOMER, ENTITIES, ENTITLEMENT, PRODUCT, Attribute, EntityType
from mdm.normalize import (
    NORMALIZERS,
    Normalized,
    NormalizedRecord,
    normalize_record,
    normalizer_for,
)

KINDS = (
    "text",
    "name",
    "person_name",
    "choice",
    "date",
    "tax_id",
    "email",
    "phone",
    "website",
    "address",
    "city",
    "postal_code",
    "country",
    "code",
    "gtin",
    "lei",
    "duns",
    "decimal",
    "integer",
    "currency",
)


def normalize(kind: str, raw, record=None, attribute: Attribute | None = None) -> Normalized:
    return NORMALIZERS[kind](raw, record or {}, attribute)


def value(kind: str, raw, record=None, attribute: Attribute | None = None):
    result = normalize(kind, raw, record, attribute)
    assert result.error is None, result.error
    return result.value


def error(kind: str, raw, record=None, attribute: Attribute | None = None) -> str:
    result = normalize(kind, raw, record, attribute)
    assert result.value is None
    assert result.keys == {}
    assert result.error
    return result.error


# ------------------------------------------------------------------------------ the contract


def test_every_kind_declared_by_an_entity_has_a_normalizer():
    declared = {a.kind for entity in ENTITIES.values() for a in entity.attributes}
    assert declared <= set(NORMALIZERS)
    assert set(KINDS) == set(NORMALIZERS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n"])
def test_empty_input_is_no_value_no_keys_no_error(kind, raw):
    assert normalize(kind, raw) == Normalized(None, {}, None)


def test_normalized_is_frozen():
    result = normalize("text", "x")
    with pytest.raises(AttributeError):
        result.value = "y"


def test_normalizer_for_binds_the_attribute_into_a_two_argument_normalizer():
    status = CONTRACT.attribute("status")
    assert normalizer_for(status)("Canceled", {}).value == "cancelled"
    sku = PRODUCT.attribute("sku")
    assert normalizer_for(sku)("ab-12 3", {}).keys == {"sku_key": "AB123"}


def test_normalizer_for_an_unknown_kind_names_the_attribute():
    with pytest.raises(KeyError, match="colour"):
        normalizer_for(Attribute("colour", "rgb"))


# ------------------------------------------------------------------------------------ text


def test_text_collapses_whitespace_and_has_no_key():
    assert normalize("text", "  Blue \t widget\n XL ") == Normalized("Blue widget XL", {})


def test_text_accepts_scalars():
    assert value("text", 42) == "42"
    assert value("text", 12.0) == "12"


# ------------------------------------------------------------------------------------ name


@pytest.mark.parametrize("raw", ["ACME Inc.", "Acme, Incorporated", "acme", "  Acme   INC "])
def test_spellings_of_one_organization_share_a_name_key(raw):
    assert normalize("name", raw).keys["name_key"] == "acme"


def test_legal_suffix_is_stripped_into_legal_form():
    assert normalize("name", "ACME Inc.").keys == {"name_key": "acme", "legal_form": "inc"}
    assert normalize("name", "Acme, Incorporated").keys["legal_form"] == "inc"


@pytest.mark.parametrize(
    ("raw", "name_key", "legal_form"),
    [
        ("Müller GmbH", "muller", "gmbh"),
        ("Widgets LLC", "widgets", "llc"),
        ("Widgets Ltd", "widgets", "ltd"),
        ("Widgets Limited", "widgets", "ltd"),
        ("Siemens AG", "siemens", "ag"),
        ("Nestlé S.A.", "nestle", "sa"),
        ("Danone SAS", "danone", "sas"),
        ("Philips BV", "philips", "bv"),
        ("Acme Corp", "acme", "corp"),
        ("Acme Corporation", "acme", "corp"),
        ("Acme Co.", "acme", "co"),
        ("Barclays plc", "barclays", "plc"),
        ("Koala Pty Ltd", "koala", "pty ltd"),
        ("Foo Co. Ltd", "foo", "co ltd"),
        ("Johnson & Co", "johnson", "co"),
    ],
)
def test_common_legal_forms_are_recognised(raw, name_key, legal_form):
    assert normalize("name", raw).keys == {"name_key": name_key, "legal_form": legal_form}


def test_name_value_keeps_the_original_spelling_with_whitespace_collapsed():
    assert value("name", "  ACME   Inc. ") == "ACME Inc."


def test_ampersand_reads_as_and_and_punctuation_is_removed():
    assert normalize("name", "Johnson & Johnson").keys == {"name_key": "johnson and johnson"}
    assert normalize("name", "A.C.M.E. (Europe)").keys == {"name_key": "acme europe"}


def test_a_name_that_is_only_a_legal_form_is_not_stripped_to_nothing():
    assert normalize("name", "GmbH").keys == {"name_key": "gmbh"}


def test_person_names_keep_words_that_look_like_legal_forms():
    assert normalize("name", "Anna Co", {"kind": "person"}).keys == {"name_key": "anna co"}
    assert normalize("name", "Anna Co", {"kind": "Individual"}).keys == {"name_key": "anna co"}


def test_missing_kind_is_treated_as_an_organization():
    assert normalize("name", "Anna Co", {}).keys == {"name_key": "anna", "legal_form": "co"}


@pytest.mark.parametrize("kind", [{}, {"kind": "organization"}])
def test_a_leading_the_is_not_part_of_an_organizations_name_key(kind):
    assert normalize("name", "The Ivy Table", kind).keys == {"name_key": "ivy table"}
    assert normalize("name", "the ivy table", kind).keys == {"name_key": "ivy table"}
    assert normalize("name", "The", kind).keys == {"name_key": "the"}


def test_a_persons_name_keeps_a_leading_the():
    assert normalize("name", "The Rock", {"kind": "person"}).keys == {"name_key": "the rock"}


# ----------------------------------------------------------------------------- person_name


def test_person_name_key_is_named_after_the_attribute():
    given = CUSTOMER.attribute("given_name")
    result = normalize("person_name", "  José  ", attribute=given)
    assert result == Normalized("José", {"given_name_key": "jose"})


def test_person_name_key_drops_punctuation_and_folds_accents():
    family = CUSTOMER.attribute("family_name")
    assert normalize("person_name", "O'Brien-Łukasz", attribute=family).keys == {
        "family_name_key": "obrien lukasz"
    }


# ---------------------------------------------------------------------------------- choice


def test_choice_is_lower_cased_and_checked_against_the_declared_choices():
    kind = CUSTOMER.attribute("kind")
    assert value("choice", " Organization ", attribute=kind) == "organization"
    assert value("choice", "PERSON", attribute=kind) == "person"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("org", "organization"), ("Company", "organization"), ("business", "organization")]
    + [("individual", "person"), ("private", "person")],
)
def test_customer_kind_synonyms_are_accepted(raw, expected):
    assert value("choice", raw, attribute=CUSTOMER.attribute("kind")) == expected


@pytest.mark.parametrize("raw", ["canceled", "Terminated"])
def test_status_synonyms_map_to_cancelled(raw):
    assert value("choice", raw, attribute=CONTRACT.attribute("status")) == "cancelled"


def test_ambiguous_inactive_status_is_not_guessed():
    reason = error("choice", "inactive", attribute=CONTRACT.attribute("status"))
    assert reason == "not one of: draft, active, suspended, expired, cancelled"


def test_synonym_only_applies_when_its_target_is_a_declared_choice():
    assert error("choice", "org", attribute=CONTRACT.attribute("status")).startswith("not one of")


def test_unknown_choice_lists_the_allowed_values():
    reason = error("choice", "robot", attribute=CUSTOMER.attribute("kind"))
    assert reason == "not one of: organization, person"


# ------------------------------------------------------------------------------------ date


@pytest.mark.parametrize(
    "raw",
    [
        "2020-01-31",
        "2020-1-31",
        "2020-01-31T10:15:00Z",
        "2020-01-31 10:15:00+01:00",
        "2020/01/31",
        "31.01.2020",
        "20200131",
        20200131,
        "31 January 2020",
        "31 Jan 2020",
        "January 31, 2020",
        "Jan 31, 2020",
        "31/01/2020",
        "01/31/2020",
        "31-01-2020",
        datetime.date(2020, 1, 31),
        datetime.datetime(2020, 1, 31, 23, 59),
    ],
)
def test_date_formats_normalize_to_iso(raw):
    assert normalize("date", raw) == Normalized("2020-01-31", {})


def test_day_month_order_is_read_from_the_part_above_twelve():
    assert value("date", "13/04/2020") == "2020-04-13"
    assert value("date", "04/13/2020") == "2020-04-13"


def test_ambiguous_day_month_is_an_error_not_a_guess():
    assert error("date", "03/04/2020") == "ambiguous date: '03/04/2020' (use YYYY-MM-DD)"


def test_equal_day_and_month_is_not_ambiguous():
    assert value("date", "03/03/2020") == "2020-03-03"


@pytest.mark.parametrize("raw", ["31/02/2020", "2021-02-29", "2020-13-01", "31.04.2020"])
def test_impossible_calendar_dates_are_errors(raw):
    assert error("date", raw) == f"not a date: {raw!r}"


@pytest.mark.parametrize("raw", ["1799-12-31", "2201-01-01", datetime.date(1066, 10, 14)])
def test_years_outside_1800_to_2200_are_errors(raw):
    assert error("date", raw).startswith("year outside 1800..2200")


@pytest.mark.parametrize("raw", ["yesterday", "31 Foo 2020", "1/2/20", "2020"])
def test_unreadable_dates_are_errors(raw):
    assert error("date", raw) == f"not a date: {raw!r}"


# ---------------------------------------------------------------------------------- tax_id


def test_tax_id_keeps_upper_case_alphanumerics():
    assert normalize("tax_id", "de 123.456.789") == Normalized(
        "DE123456789", {"tax_id_key": "DE123456789"}
    )
    assert value("tax_id", 123456789) == "123456789"


def test_tax_id_with_fewer_than_four_alphanumerics_is_an_error():
    assert "fewer than 4" in error("tax_id", "1-2-3")


# ----------------------------------------------------------------------------------- email


def test_email_is_lower_cased_with_domain_key():
    assert normalize("email", "  John.Doe@Example.COM ") == Normalized(
        "john.doe@example.com",
        {"email_key": "john.doe@example.com", "email_domain": "example.com"},
    )


def test_mailto_prefix_is_stripped():
    assert value("email", "MAILTO:info@acme.de") == "info@acme.de"


@pytest.mark.parametrize("raw", ["john", "john@", "@acme.com", "john@acme", "a b@acme.com"])
def test_malformed_email_is_an_error(raw):
    assert error("email", raw) == f"not an e-mail address: {raw!r}"


# ----------------------------------------------------------------------------------- phone


def test_national_phone_number_uses_the_record_country_as_region():
    result = normalize("phone", "030 1234567", {"country": "Germany"})
    assert result == Normalized("+49301234567", {"phone_key": "+49301234567"})


def test_phone_with_country_code_needs_no_region():
    assert value("phone", "+1 (415) 555-2671") == "+14155552671"
    assert value("phone", "+49 30 1234567", {"country": "US"}) == "+49301234567"


def test_phone_with_00_international_prefix_and_no_region():
    assert value("phone", "0049 30 1234567") == "+49301234567"


def test_phone_accepts_an_integer():
    assert value("phone", 4153334444, {"country": "US"}) == "+14153334444"


def test_impossible_phone_number_is_an_error_naming_the_region():
    assert error("phone", "123", {"country": "US"}) == "not a phone number for region US: '123'"


def test_national_phone_number_without_a_country_is_an_error():
    assert error("phone", "030 1234567").startswith("not a phone number")


@pytest.mark.parametrize(
    "raw", ["404/875-0276", "(404) 875-0276", "404-875-0276", "404.875.0276", "4048750276"]
)
def test_a_north_american_number_without_a_country_reads_as_plus_one(raw):
    """A US or Canadian export often has no country column and writes numbers nationally: all
    of them were errors, so such a set matched without its phones (the strongest evidence a
    name-street-city-phone export has). Ten digits in the North American plan's shape (valid
    area code and exchange) are read as +1, as "+1 404 875 0276" is."""
    assert normalize("phone", raw) == Normalized("+14048750276", {"phone_key": "+14048750276"})
    assert value("phone", "604 555 0199") == "+16045550199"  # Vancouver: NANP too


@pytest.mark.parametrize("raw", ["98765 43210", "0301234567", "212 555 12345", "911"])
def test_a_number_outside_the_north_american_plan_still_needs_a_country(raw):
    """National numbers elsewhere start with a trunk prefix or have another length: no guess."""
    assert error("phone", raw).startswith("not a phone number (no country")


def test_phone_with_unknown_country_is_read_without_region():
    assert value("phone", "+44 20 7946 0958", {"country": "Narnia"}) == "+442079460958"


# --------------------------------------------------------------------------------- website


@pytest.mark.parametrize(
    ("raw", "domain"),
    [
        ("https://WWW.Shop.Acme.co.uk/about", "acme.co.uk"),
        ("acme.com", "acme.com"),
        ("www.acme.com.", "acme.com"),
        ("http://user:secret@acme.com:8080/path?q=1#top", "acme.com"),
        ("//cdn.acme.de", "acme.de"),
        ("münchen.de", "münchen.de"),
        ("https://xn--mnchen-3ya.de/", "münchen.de"),
    ],
)
def test_website_becomes_its_registrable_domain(raw, domain):
    assert normalize("website", raw) == Normalized(domain, {"domain": domain})


@pytest.mark.parametrize("raw", ["localhost", "co.uk", "acme.invalidtld", "192.168.0.1", "a b.com"])
def test_website_without_a_registrable_domain_is_an_error(raw):
    assert "registrable domain" in error("website", raw)


# --------------------------------------------------------------------------------- address


def test_address_key_abbreviates_street_words_and_directions():
    line1 = CUSTOMER.attribute("address_line1")
    long_form = normalize("address", "12 North Main Street, Suite 5", attribute=line1)
    short_form = normalize("address", "12 N. Main St.  Ste 5", attribute=line1)
    assert long_form.value == "12 North Main Street, Suite 5"
    assert long_form.keys == short_form.keys == {"address_line1_key": "12 n main st"}


@pytest.mark.parametrize(
    "raw",
    [
        "5330 N. Sahara Ave",
        "5330 north sahara avenue suite 252",
        "5330 N Sahara Ave, Ste. 252",
        "5330 N. Sahara Ave. #252",
        "5330 N. Sahara Ave, 2nd Floor",
        "5330 N. Sahara Ave 2nd fl.",
        "5330 N. Sahara Ave (in the Parker Hotel)",
        "5330 north sahara avenue, parker hotel",
        "5330 N. Sahara Blv.",
    ],
)
def test_the_unit_within_a_building_is_not_part_of_the_address_key(raw):
    line1 = CUSTOMER.attribute("address_line1")
    expected = "5330 n sahara blvd" if "Blv" in raw else "5330 n sahara ave"
    assert normalize("address", raw, attribute=line1).keys == {"address_line1_key": expected}
    assert value("address", raw) == raw


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Unit 5, 12 Main St", "unit 5 12 main st"),  # the unit first: kept whole
        ("Suite 100", "ste 100"),
        ("#5 Main St", "5 main st"),
        ("1 Floor Road", "1 fl rd"),
        ("Hauptstraße 5, 2. OG", "hauptstr 5"),
        ("Acme Tower, 12 Main St", "acme tower 12 main st"),
    ],
)
def test_an_address_that_is_not_street_then_unit_keeps_its_words(raw, key):
    line1 = CUSTOMER.attribute("address_line1")
    assert normalize("address", raw, attribute=line1).keys == {"address_line1_key": key}


def test_address_key_canonicalises_german_strasse():
    line1 = CUSTOMER.attribute("address_line1")
    keys = {
        normalize("address", raw, attribute=line1).keys["address_line1_key"]
        for raw in ("Hauptstraße 5", "Hauptstrasse 5", "Hauptstr. 5")
    }
    assert keys == {"hauptstr 5"}
    assert normalize("address", "Lange Straße 1", attribute=line1).keys == {
        "address_line1_key": "lange str 1"
    }


def test_address_key_is_named_after_the_attribute():
    line2 = CUSTOMER.attribute("address_line2")
    assert normalize("address", "Avenue Road", attribute=line2).keys == {
        "address_line2_key": "ave rd"
    }


# ------------------------------------------------------------------------------------ city


def test_city_value_is_untouched_and_key_is_folded():
    assert normalize("city", " São  Paulo ") == Normalized("São Paulo", {"city_key": "sao paulo"})


@pytest.mark.parametrize("raw", ["St. Louis", "Saint Louis", "ST LOUIS", "Saint-Louis"])
def test_saint_abbreviations_share_a_city_key(raw):
    assert normalize("city", raw).keys == {"city_key": "saint louis"}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("New York City", "new york"),
        ("NYC", "new york"),
        ("new york", "new york"),
        ("L.A.", "los angeles"),
        ("la", "los angeles"),
        ("S.F.", "san francisco"),
        ("Vegas", "las vegas"),
        ("Washington, D.C.", "washington"),
        ("W. Hollywood", "west hollywood"),
        ("west hollywood", "west hollywood"),
        ("Ft. Lauderdale", "fort lauderdale"),
        ("Mt. Vernon", "mount vernon"),
        ("La Paz", "la paz"),
    ],
)
def test_common_city_aliases_and_abbreviations_share_a_city_key(raw, key):
    assert normalize("city", raw).keys == {"city_key": key}


# ----------------------------------------------------------------------------- postal_code


def test_postal_code_value_is_upper_case_and_key_alphanumeric():
    assert normalize("postal_code", " sw1a   1aa ") == Normalized(
        "SW1A 1AA", {"postal_code_key": "SW1A1AA"}
    )
    assert value("postal_code", 10115) == "10115"


# --------------------------------------------------------------------------------- country


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("de", "DE"),
        ("DEU", "DE"),
        ("276", "DE"),
        (276, "DE"),
        ("36", "AU"),
        ("Germany", "DE"),
        ("Deutschland", "DE"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("United States of America", "US"),
        ("america", "US"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("Scotland", "GB"),
        ("Wales", "GB"),
        ("Holland", "NL"),
        ("The Netherlands", "NL"),
        ("South Korea", "KR"),
        ("Korea", "KR"),
        ("Russia", "RU"),
        ("Czech Republic", "CZ"),
        ("Czechia", "CZ"),
        ("Ivory Coast", "CI"),
        ("Côte d'Ivoire", "CI"),
        ("cote divoire", "CI"),
        ("Schweiz", "CH"),
        ("Suisse", "CH"),
        ("España", "ES"),
        ("espana", "ES"),
        ("Österreich", "AT"),
        ("Viet Nam", "VN"),
        ("Bolivia, Plurinational State of", "BO"),
        ("Republic of Moldova", "MD"),
    ],
)
def test_country_codes_names_and_aliases_become_alpha_2(raw, code):
    assert normalize("country", raw) == Normalized(code, {"country": code})


@pytest.mark.parametrize("raw", ["Narnia", "XX", "Germ"])
def test_unknown_country_is_an_error(raw):
    assert error("country", raw) == f"unknown country: {raw!r}"


# ------------------------------------------------------------------------------------ code


def test_code_key_is_upper_alphanumerics_named_after_the_attribute():
    sku = PRODUCT.attribute("sku")
    assert normalize("code", "  ab-12  3 ", attribute=sku) == Normalized(
        "ab-12 3", {"sku_key": "AB123"}
    )
    unit = PRODUCT.attribute("unit_of_measure")
    assert normalize("code", "pcs.", attribute=unit).keys == {"unit_of_measure_key": "PCS"}


# ------------------------------------------------------------------------------------ gtin


@pytest.mark.parametrize(
    ("raw", "gtin"),
    [
        ("4006381333931", "04006381333931"),
        ("4006-3813 33931", "04006381333931"),
        (4006381333931, "04006381333931"),
        ("96385074", "00000096385074"),
        ("036000291452", "00036000291452"),
        ("10036000291459", "10036000291459"),
    ],
)
def test_valid_gtin_becomes_14_digits(raw, gtin):
    assert normalize("gtin", raw) == Normalized(gtin, {"gtin_key": gtin})


def test_gtin_with_wrong_check_digit_is_an_error():
    assert error("gtin", "4006381333932") == "GTIN check digit is wrong: '4006381333932'"


@pytest.mark.parametrize("raw", ["12345", "4006381333931000", "ABC6381333931"])
def test_gtin_with_wrong_length_or_letters_is_an_error(raw):
    assert error("gtin", raw).startswith("not a GTIN")


# --------------------------------------------------------------------------------- decimal


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234.5", "1234.5"),
        ("1234.50", "1234.50"),
        ("1,234.50", "1234.50"),
        ("1.234,50", "1234.50"),
        ("12,5", "12.5"),
        ("12,345", "12345"),
        ("1.234.567", "1234567"),
        ("1 234,50", "1234.50"),
        ("1'234.50", "1234.50"),
        ("$1,234.00", "1234.00"),
        ("€ 12,50", "12.50"),
        ("12.50 €", "12.50"),
        ("£-3", "-3"),
        ("-$3.10", "-3.10"),
        ("(1,234.00)", "-1234.00"),
        ("+7", "7"),
        ("-0.00", "0.00"),
        ("1e3", "1000"),
        (19.99, "19.99"),
        (42, "42"),
        (1e-7, "0.0000001"),
        (Decimal("2.500"), "2.500"),
    ],
)
def test_decimal_accepts_grouped_european_and_currency_forms(raw, expected):
    assert normalize("decimal", raw) == Normalized(expected, {})


@pytest.mark.parametrize(
    "raw", ["NaN", "Infinity", "-inf", float("nan"), float("inf"), Decimal("NaN"), "abc"]
)
def test_decimal_rejects_non_finite_and_non_numbers(raw):
    assert "number" in error("decimal", raw)


@pytest.mark.parametrize("raw", ["1,2345", "1.2.3", "12 34", "1e999999", True])
def test_decimal_rejects_malformed_grouping_huge_exponents_and_booleans(raw):
    error("decimal", raw)


# --------------------------------------------------------------------------------- integer


@pytest.mark.parametrize(
    ("raw", "expected"), [(42, 42), ("12", 12), ("12.0", 12), (12.0, 12), ("-3", -3)]
)
def test_integer_accepts_whole_numbers(raw, expected):
    assert normalize("integer", raw) == Normalized(expected, {})


@pytest.mark.parametrize("raw", ["12.5", 12.5, "twelve", True])
def test_integer_rejects_fractions_words_and_booleans(raw):
    assert error("integer", raw).startswith("not an integer")


# -------------------------------------------------------------------------------- currency


@pytest.mark.parametrize(
    ("raw", "code"),
    [("eur", "EUR"), (" USD ", "USD"), ("$", "USD"), ("€", "EUR"), ("£", "GBP"), ("Euro", "EUR")]
    + [("978", "EUR")],
)
def test_currency_becomes_iso_4217(raw, code):
    assert normalize("currency", raw) == Normalized(code, {})


@pytest.mark.parametrize("raw", ["XYZ", "dollars?", "¥"])
def test_unknown_or_ambiguous_currency_is_an_error(raw):
    assert error("currency", raw) == f"unknown currency: {raw!r}"


# ------------------------------------------------------------------------- normalize_record

FULL_CUSTOMER_ROW = {
    "source_key": "C-1",
    "kind": "Company",
    "name": "ACME Inc.",
    "given_name": "",
    "family_name": None,
    "date_of_birth": "31/02/2020",
    "tax_id": "us 12-3456789",
    "email": "MAILTO:Sales@Acme.com",
    "phone": "(415) 555-2671",
    "website": "https://www.acme.com/contact",
    "address_line1": "1 Market Street",
    "address_line2": "Suite 100",
    "city": "San Francisco",
    "region": " CA ",
    "postal_code": "94105",
    "country": "USA",
    "parent_key": "C-0",
}


def test_full_customer_row_keeps_valid_values_and_reports_the_broken_date():
    record = normalize_record(CUSTOMER, FULL_CUSTOMER_ROW)

    assert isinstance(record, NormalizedRecord)
    assert record.invalid == {
        "date_of_birth": {"raw": "31/02/2020", "reason": "not a date: '31/02/2020'"}
    }
    assert record.values == {
        "kind": "organization",
        "name": "ACME Inc.",
        "tax_id": "US123456789",
        "email": "sales@acme.com",
        "phone": "+14155552671",
        "website": "acme.com",
        "address_line1": "1 Market Street",
        "address_line2": "Suite 100",
        "city": "San Francisco",
        "region": "CA",
        "postal_code": "94105",
        "country": "US",
    }
    assert record.keys == {
        "name_key": "acme",
        "legal_form": "inc",
        "tax_id_key": "US123456789",
        "email_key": "sales@acme.com",
        "email_domain": "acme.com",
        "phone_key": "+14155552671",
        "domain": "acme.com",
        "address_line1_key": "1 market st",
        "address_line2_key": "ste 100",
        "city_key": "san francisco",
        "postal_code_key": "94105",
        "country": "US",
    }


def test_record_ignores_columns_that_are_not_attributes_and_absent_attributes():
    record = normalize_record(PRODUCT, {"sku": "A-1", "colour": "red", "source_key": "P1"})
    assert record == NormalizedRecord({"sku": "A-1"}, {"sku_key": "A1"}, {})


def test_record_invalid_raw_is_the_original_value_as_text():
    record = normalize_record(ENTITLEMENT, {"quantity": 2.5, "status": "Active"})
    assert record.values == {"status": "active"}
    assert record.invalid == {"quantity": {"raw": "2.5", "reason": "not an integer: '2.5'"}}


def test_record_choice_is_validated_against_the_entitys_own_choices():
    # "draft" is a contract status but not an entitlement status.
    assert normalize_record(CONTRACT, {"status": "draft"}).values == {"status": "draft"}
    invalid = normalize_record(ENTITLEMENT, {"status": "draft"}).invalid
    assert invalid["status"]["reason"] == "not one of: active, suspended, expired, cancelled"


def test_full_product_and_contract_rows():
    product = normalize_record(
        PRODUCT,
        {
            "sku": "wid-001",
            "name": " Widget ",
            "gtin": "4006381333931",
            "unit_of_measure": "pcs",
            "list_price": "1.234,50",
            "currency": "€",
        },
    )
    assert product.values == {
        "sku": "wid-001",
        "name": "Widget",
        "gtin": "04006381333931",
        "unit_of_measure": "pcs",
        "list_price": "1234.50",
        "currency": "EUR",
    }
    assert product.invalid == {}

    contract = normalize_record(
        CONTRACT,
        {
            "contract_number": "k-2020/7",
            "status": "Canceled",
            "start_date": datetime.date(2020, 1, 1),
            "end_date": "2020-12-31T00:00:00",
            "currency": "usd",
            "total_value": 19.99,
        },
    )
    assert contract.values == {
        "contract_number": "k-2020/7",
        "status": "cancelled",
        "start_date": "2020-01-01",
        "end_date": "2020-12-31",
        "currency": "USD",
        "total_value": "19.99",
    }
    assert contract.keys == {"contract_number_key": "K20207"}


def test_record_of_a_redeclared_entity_uses_the_new_declaration():
    first = EntityType("thing", "THG", (Attribute("size", "integer"),))
    second = EntityType("thing", "THG", (Attribute("size", "text"),))
    assert normalize_record(first, {"size": "3"}).values == {"size": 3}
    assert normalize_record(second, {"size": "3"}).values == {"size": "3"}


@pytest.mark.parametrize(
    ("attribute", "raw"),
    [
        ("phone", "000-000-0000"),
        ("phone", "+1 999 999 9999"),
        ("phone", "123-456-7890"),
        ("phone", "0000000 ext."),  # the digits do not end the value
        ("phone", "(555) 555-5555 "),
        ("phone", "٠" * 10),  # Arabic-Indic zeros are digits as well
        ("phone", "N/A"),
        ("email", "none@none.com"),
        ("email", "NoReply@provider.example"),
        ("email", "unknown"),
        ("tax_id", "DE000000000"),
        ("name", "Unknown"),
        ("city", " n/a "),
        ("city", "n/a" + "\n" * 30),
        ("name", "Not \u00a0\t known"),
        ("website", "www.example.com"),
    ],
)
def test_a_placeholder_is_no_value(attribute, raw):
    customer = CUSTOMER

    normalized = normalize_record(customer, {attribute: raw, "country": "US"})

    assert attribute not in normalized.values and attribute not in normalized.invalid
    assert not {k for k in normalized.keys if k != "country"}


def test_a_word_used_as_a_placeholder_local_part_is_no_placeholder_without_an_at():
    normalized = normalize_record(CUSTOMER, {"name": "Noreply", "email": "noreply"})

    assert normalized.values == {"name": "Noreply"}
    assert "email" in normalized.invalid


@pytest.mark.parametrize("raw", ["+49 30 5555 5551", "+1 212 123 4560", "5550000 x1"])
def test_a_phone_with_many_repeated_digits_that_is_no_placeholder_is_kept(raw):
    assert "phone" in normalize_record(CUSTOMER, {"phone": raw, "country": "US"}).values


def test_a_real_phone_tax_id_and_mailbox_are_kept():
    customer = CUSTOMER
    row = {"phone": "+1 212 555 0182", "tax_id": "DE595943304", "email": "info@acme.com"}

    normalized = normalize_record(customer, row)

    assert set(normalized.values) == {"phone", "tax_id", "email"}
