"""A sparse two-source set of organizations: name, street, city and phone only.

Why this exists: real exports from two systems often carry nothing but a name, a street, a
city and a phone (no tax ID, e-mail, website or country). Training must still yield a usable
model on such data (issue 11, item 7), and the matching-quality bench measures it. Each
organization is generated once as a truth; about `overlap` of them are held by both systems,
the others by one. A copy in the second system is written in its own conventions (upper-case
names, another legal-form spelling, abbreviated street words, another phone format) with
realistic noise: typos, dropped legal forms, a missing phone or street, a moved office.

Determinism: one `random.Random(seed)` drives every choice and seeds Faker; the same seed and
size give the same rows, another seed another set of the same kind.

Pure Python + Faker: no Django, no database.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from faker import Faker

COLUMNS = ("source_key", "kind", "name", "address_line1", "city", "phone")
_LEGAL_FORMS = {
    "Inc": ("Inc.", "Incorporated", "INC", ""),
    "LLC": ("L.L.C.", "LLC", "Llc", ""),
    "Ltd": ("Limited", "Ltd.", "LTD", ""),
    "Corp": ("Corporation", "Corp.", "CORP", ""),
    "Co": ("Company", "Co.", ""),
}
_STREET_WORDS = {
    "Street": "St",
    "Avenue": "Ave",
    "Road": "Rd",
    "Drive": "Dr",
    "Boulevard": "Blvd",
    "Lane": "Ln",
    "Court": "Ct",
    "Suite": "Ste",
}


@dataclass(frozen=True)
class SparseSet:
    """Rows per system ("a", "b") and the truth: (system, source key) → organization id.

    `mapping` is the source mapping (docs/mappings.md) a user would write to load the rows
    when their columns are not canonical (the "export" style: ``id``, ``addr``), else None."""

    rows: dict[str, list[dict[str, str]]]
    truth: dict[tuple[str, str], str]
    columns: tuple[str, ...] = COLUMNS
    mapping: dict | None = None

    def write(self, directory: Path) -> dict[str, Path]:
        """One CSV per system in `directory`; returns system → path."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for system, rows in self.rows.items():
            path = directory / f"{system}_organizations.csv"
            with path.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(self.columns))
                writer.writeheader()
                writer.writerows(rows)
            paths[system] = path
        return paths


def _typo(rng: random.Random, text: str) -> str:
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(letters) < 4:
        return text
    i = rng.choice(letters[1:])
    action = rng.random()
    if action < 0.4:  # swap with the next character
        if i + 1 < len(text):
            return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        return text
    if action < 0.7:  # drop
        return text[:i] + text[i + 1 :]
    return text[:i] + rng.choice("aeiourstnl") + text[i + 1 :]  # replace


def _phone(rng: random.Random, digits: str, style: int) -> str:
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    return (
        f"+1-{area}-{exchange}-{line}",
        f"+1 ({area}) {exchange}-{line}",
        f"001 {area} {exchange} {line}",
    )[style]


def _organization(fake: Faker, rng: random.Random) -> dict[str, str]:
    base = fake.last_name() if rng.random() < 0.5 else fake.company().split(",")[0].split(" ")[0]
    word = rng.choice(
        ("Logistics", "Systems", "Foods", "Partners", "Dental", "Supply", "Labs", "Media")
        + ("Consulting", "Holdings", "Builders", "Analytics", "Motors", "Health", "Energy")
    )
    form = rng.choice(tuple(_LEGAL_FORMS))
    street = fake.street_address()
    return {
        "base": f"{base} {word}",
        "form": form,
        "address_line1": street,
        "city": fake.city(),
        "phone": "".join(
            str(rng.randint(2, 9)) if i in (0, 3) else str(rng.randint(0, 9)) for i in range(10)
        ),
    }


def _name(rng: random.Random, truth: dict[str, str], *, second: bool) -> str:
    form = rng.choice(_LEGAL_FORMS[truth["form"]]) if second else truth["form"]
    name = f"{truth['base']} {form}".strip()
    if second and rng.random() < 0.15:
        name = _typo(rng, name)
    if second and rng.random() < 0.3:
        name = name.upper()
    return name


def _street(rng: random.Random, street: str, *, second: bool) -> str:
    if not second:
        return street
    for long, short in _STREET_WORDS.items():
        if rng.random() < 0.7:
            street = street.replace(long, short)
    if rng.random() < 0.1:
        street = _typo(rng, street)
    return street.upper() if rng.random() < 0.2 else street


def sparse_organizations(
    *,
    organizations: int = 300,
    overlap: float | None = None,
    seed: int = 7,
    style: str = "synthetic",
) -> SparseSet:
    """`organizations` truths; `overlap` of them in both systems, the rest split between the
    two. Near-namesakes (one family name, another trade) keep the task honest.

    `style` "export" gives the other flavour (`demo.export.restaurant_export`): two real
    systems' exports of businesses, with their own column names and no kind or country.
    `overlap` defaults to 0.3 (synthetic) and 0.2 (export)."""
    if style == "export":
        from demo.export import restaurant_export

        return restaurant_export(
            organizations=organizations, overlap=0.2 if overlap is None else overlap, seed=seed
        )
    if style != "synthetic":
        raise ValueError(f"unknown sparse style {style!r} (synthetic, export)")
    overlap = 0.3 if overlap is None else overlap
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(rng.randrange(2**31))
    truths = [_organization(fake, rng) for _ in range(organizations)]
    rows: dict[str, list[dict[str, str]]] = {"a": [], "b": []}
    truth: dict[tuple[str, str], str] = {}
    for number, org in enumerate(truths, start=1):
        draw = rng.random()
        systems = ("a", "b") if draw < overlap else ("a",) if draw < (1 + overlap) / 2 else ("b",)
        moved = rng.random() < 0.08
        for system in systems:
            second = system == "b" and len(systems) == 2
            key = f"{system.upper()}{len(rows[system]) + 1:05d}"
            street, city = org["address_line1"], org["city"]
            if second and moved:
                street, city = fake.street_address(), fake.city()
            row = {
                "source_key": key,
                "kind": "organization",
                "name": _name(rng, org, second=second),
                "address_line1": _street(rng, street, second=second),
                "city": city.upper() if second and rng.random() < 0.3 else city,
                "phone": _phone(rng, org["phone"], 1 if system == "b" else rng.choice((0, 2))),
            }
            if rng.random() < 0.1:
                row["phone"] = ""
            if rng.random() < 0.05:
                row["address_line1"] = ""
            rows[system].append(row)
            truth[(system, key)] = f"ORG{number}"
    for system_rows in rows.values():
        rng.shuffle(system_rows)
    return SparseSet(rows=rows, truth=truth)
