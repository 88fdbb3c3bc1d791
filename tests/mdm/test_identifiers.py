"""Hard identifiers: normalization, validation (formats and check digits) and conflicts."""

from __future__ import annotations

import pytest

from mdm import identifiers
from mdm.identifiers import conflicts, normalize, reason

# (kind, raw, country, expected canonical value or None)
CASES = [
    # tax IDs: formatting variants of one number are one identifier
    ("tax_id", "GB980780684", None, "GB980780684"),
    ("tax_id", "GB 980 780 684", None, "GB980780684"),
    ("tax_id", "gb-980.780.684", None, "GB980780684"),
    ("tax_id", "980780684", "GB", "GB980780684"),
    ("tax_id", "980 780 684", "gb", "GB980780684"),
    ("tax_id", "GB980780684", "DE", "GB980780684"),  # the number's own prefix wins
    ("tax_id", "DE136695976", None, "DE136695976"),
    ("tax_id", "de 136.695.976", None, "DE136695976"),
    ("tax_id", "136695976", "DE", "DE136695976"),
    ("tax_id", "FR40303265045", None, "FR40303265045"),
    ("tax_id", "BE0403019261", None, "BE0403019261"),
    ("tax_id", "BE 403.019.261", None, "BE0403019261"),
    ("tax_id", "IT00743110157", None, "IT00743110157"),
    ("tax_id", "51 824 753 556", "AU", "AU51824753556"),
    ("tax_id", "ABN 51 824 753 556", "AU", "AU51824753556"),
    ("tax_id", "VAT: GB 980 780 684", None, "GB980780684"),
    ("tax_id", "USt-IdNr. DE136695976", None, "DE136695976"),
    ("tax_id", "BE0403019261", None, "BE0403019261"),  # BE is no label
    ("tax_id", "ABN51824753556", "AU", "AU51824753556"),
    ("tax_id", "VATNO GB980780684", None, "GB980780684"),
    ("tax_id", "BNP12345678", "FR", None),  # not the label BN
    ("tax_id", "NL123456782B01", None, "NL123456782B01"),
    ("tax_id", "ATU13585627", None, "ATU13585627"),
    ("tax_id", "EL094259216", None, "EL094259216"),
    ("tax_id", "094259216", "GR", "EL094259216"),
    ("tax_id", "CHE-116.281.710 MWST", None, "CH116281710"),
    ("tax_id", "872143001RT0001", "CA", "CA872143001"),
    ("tax_id", "872143001RC0001", "CA", "CA872143001"),
    ("tax_id", "87-2143001", "US", "US872143001"),
    ("tax_id", "JP-5011101010347", "JP", "JP5011101010347"),  # no rule: generic
    # invalid check digits
    ("tax_id", "GB980780685", None, None),
    ("tax_id", "DE136695977", None, None),
    ("tax_id", "FR41303265045", None, None),
    ("tax_id", "BE0403019262", None, None),
    ("tax_id", "IT00743110158", None, None),
    ("tax_id", "51 824 753 557", "AU", None),
    # wrong format for the country
    ("tax_id", "DE12345678", None, None),
    ("tax_id", "DE1366959760", None, None),
    ("tax_id", "NL123456782", None, None),
    ("tax_id", "ATU1358562", None, None),
    # placeholders and bare numbers without a country
    ("tax_id", "N/A", "DE", None),
    ("tax_id", "unknown", "GB", None),
    ("tax_id", "000000000", "US", None),
    ("tax_id", "DE000000000", None, None),
    ("tax_id", "999-99-9999", "US", None),
    ("tax_id", "123456789", "US", None),
    ("tax_id", "", "DE", None),
    ("tax_id", None, "DE", None),
    ("tax_id", "136695976", None, None),
    ("tax_id", "JP-12", "JP", None),
    # LEI: ISO 17442, mod 97-10
    ("lei", "5493001KJTIIGC8Y1R12", None, "5493001KJTIIGC8Y1R12"),
    ("lei", "hwupkr0mpou8fgxbt394", None, "HWUPKR0MPOU8FGXBT394"),
    ("lei", "HWUP KR0M POU8 FGXB T394", None, "HWUPKR0MPOU8FGXBT394"),
    ("lei", "HWUPKR0MPOU8FGXBT395", None, None),
    ("lei", "HWUPKR0MPOU8FGXBT39", None, None),
    # D-U-N-S: nine digits
    ("duns", "15-048-3782", None, "150483782"),
    ("duns", "150483782", None, "150483782"),
    ("duns", "15048378", None, None),
    ("duns", "000000000", None, None),
    # GTIN: 8/12/13/14 digits, GS1 check digit, compared as GTIN-14
    ("gtin", "4006381333931", None, "04006381333931"),
    ("gtin", "04006381333931", None, "04006381333931"),
    ("gtin", "400-6381-333931", None, "04006381333931"),
    ("gtin", "96385074", None, "00000096385074"),
    ("gtin", "036000291452", None, "00036000291452"),
    ("gtin", "4006381333932", None, None),
    ("gtin", "400638133393", None, None),
    ("gtin", "0000000000000", None, None),
    # contract numbers: a code, compared within a source system
    ("contract_number", "c-1001", None, "C1001"),
    ("contract_number", "N/A", None, None),
]


@pytest.mark.parametrize(("kind", "raw", "country", "expected"), CASES)
def test_normalize(kind, raw, country, expected):
    assert normalize(kind, raw, country=country) == expected


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown identifier kind"):
        normalize("passport", "X1234567")


@pytest.mark.parametrize(
    ("entity", "attributes", "system", "expected"),
    [
        (
            "customer",
            {"tax_id": "980780684", "country": "GB", "lei": "5493001KJTIIGC8Y1R12"},
            "crm",
            {"tax_id": "GB980780684", "lei": "5493001KJTIIGC8Y1R12"},
        ),
        ("customer", {"tax_id": "980780684"}, "crm", {}),  # bare, no country
        (
            "customer",
            {"tax_id": "N/A", "country": "DE", "duns": "150483782"},
            None,
            {"duns": "150483782"},
        ),
        ("customer", {"name": "Acme"}, "crm", {}),
        ("product", {"gtin": "4006381333931", "sku": "A-1"}, "erp", {"gtin": "04006381333931"}),
        ("contract", {"contract_number": "C-1001"}, "crm", {"contract_number@crm": "C1001"}),
        ("contract", {"contract_number": "C-1001"}, None, {}),
        ("entitlement", {"status": "active"}, "crm", {}),
    ],
)
def test_identifiers_of_a_record(entity, attributes, system, expected):
    assert identifiers.identifiers(entity, attributes, source_system=system) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ({"tax_id": "DE136695976"}, {"tax_id": "DE136695976"}, []),
        ({"tax_id": "DE136695976"}, {"tax_id": "GB980780684"}, ["tax_id"]),
        ({"tax_id": "DE136695976"}, {}, []),
        ({}, {}, []),
        ({"tax_id": "DE1", "lei": "A"}, {"tax_id": "DE2", "lei": "B"}, ["lei", "tax_id"]),
        ({"tax_id": "DE1", "lei": "A"}, {"tax_id": "DE1", "lei": "B"}, ["lei"]),
    ],
)
def test_conflicts(left, right, expected):
    assert conflicts("customer", left, right) == expected
    assert conflicts("customer", right, left) == expected


def test_contract_numbers_conflict_only_within_one_source_system():
    crm_a = identifiers.identifiers("contract", {"contract_number": "C-1"}, source_system="crm")
    crm_b = identifiers.identifiers("contract", {"contract_number": "C-2"}, source_system="crm")
    erp_b = identifiers.identifiers("contract", {"contract_number": "C-2"}, source_system="erp")
    assert conflicts("contract", crm_a, crm_b) == ["contract_number@crm"]
    assert conflicts("contract", crm_a, erp_b) == []
    assert reason("contract", ["contract_number@crm"]) == "conflicting contract numbers"


def test_reason_words_each_kind_once():
    assert reason("customer", ["tax_id"]) == "conflicting tax IDs"
    assert reason("customer", ["tax_id", "lei"]) == "conflicting tax IDs; conflicting LEIs"
    assert reason("product", ["gtin"]) == "conflicting GTINs"
    assert reason("customer", []) == ""


def test_lei_and_duns_are_declared_attributes_normalized_at_ingest():
    from mdm.entities import CUSTOMER
    from mdm.normalize import normalize_record

    result = normalize_record(
        CUSTOMER, {"lei": "hwupkr0mpou8fgxbt394", "duns": "15-048-3782", "name": "Apple"}
    )
    assert result.values["lei"] == "HWUPKR0MPOU8FGXBT394"
    assert result.values["duns"] == "150483782"
    bad = normalize_record(CUSTOMER, {"lei": "HWUPKR0MPOU8FGXBT395"})
    assert "lei" in bad.invalid


def test_spellings_of_one_valid_tax_id_share_the_matching_key():
    """Equal identifiers are equal evidence: the key matching compares is the identifier."""
    from mdm.entities import CUSTOMER
    from mdm.normalize import normalize_record

    def key(**row):
        return normalize_record(CUSTOMER, row).keys["tax_id_key"]

    assert key(tax_id="980780684", country="United Kingdom") == key(tax_id="GB 980 780 684")
    assert key(tax_id="980780684", country="GB") == "GB980780684"
    assert key(tax_id="1234567", country="AU") == "1234567"  # no valid identifier: as sent
