"""A sparse two-source set the way real exports look: two guides' restaurant lists.

Why this exists: `demo.sparse`'s synthetic set is kind to a matcher — every phone carries its
country code, every row says it is an organization, names are a family name, a trade and a
legal form. Real two-source sets of businesses (the classic Fodor's / Zagat restaurant lists
are the model) are not: columns ``id, name, addr, city, phone, type`` and nothing else (no
kind, no country, so national phone numbers); each source writes phones its own way
("404/875-0276" / "404-875-0276"); names differ by abbreviations and punctuation ("art's
delicatessen" / "art's deli", "&" / "and", a leading "the", "café" / "cafe", a location
suffix "(venice)"); addresses by abbreviations and suite or floor text ("12224 ventura
blvd." / "12224 ventura boulevard"); cities by aliases ("new york city" / "new york", "w.
hollywood" / "west hollywood", "la" / "los angeles") or a neighbourhood for the city;
and one source writes everything in lower case. Hard negatives: chains whose branches
share the name but not street or phone, and different businesses at one address (a hotel's
restaurants behind its switchboard, a mall's food court).

Columns are not canonical: a user loads them with a source mapping (`EXPORT_MAPPING`,
docs/mappings.md), as `bench/match_quality.py --sparse-style export` does.

Determinism: one `random.Random(seed)` drives every choice and seeds Faker. Pure Python +
Faker and the word lists below: no Django, no database, no download.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from faker import Faker

from demo.sparse import SparseSet, _typo

EXPORT_COLUMNS = ("id", "name", "addr", "city", "phone", "type")
# What a user writes to load these files (`load_source --mapping`); `type` stays an extra.
EXPORT_MAPPING = {
    "entity": "customer",
    "description": "a guide's restaurant export: id, name, addr, city, phone, type",
    "fields": {
        "source_key": "id",
        "name": "name",
        "address_line1": "addr",
        "city": "city",
        "phone": "phone",
    },
}


@dataclass(frozen=True)
class _Metro:
    city: str  # as source "a" writes it
    aliases: tuple[str, ...]  # how the other source may write the same city
    area_codes: tuple[str, ...]
    # neighbourhoods one source gives as the city (their own aliases after the name)
    districts: tuple[tuple[str, ...], ...]
    streets: tuple[str, ...]


_METROS = (
    _Metro(
        "Los Angeles",
        ("la", "l.a.", "los angeles"),
        ("213", "310", "818"),
        (
            ("Hollywood",),
            ("West Hollywood", "w. hollywood", "west hollywood"),
            ("Venice",),
            ("Studio City",),
            ("Santa Monica",),
            ("Beverly Hills",),
            ("Pasadena",),
            ("Sherman Oaks",),
        ),
        ("Sunset", "Ventura", "La Cienega", "Melrose", "Wilshire", "Santa Monica", "Pico")
        + ("Beverly", "Robertson", "Main", "Olympic", "Fairfax", "Hollywood", "Lincoln"),
    ),
    _Metro(
        "New York City",
        ("new york", "nyc", "new york city", "ny"),
        ("212", "718"),
        (("Brooklyn",), ("Queens",), ("Manhattan", "new york")),
        ("Broadway", "Lexington", "Madison", "Park", "Amsterdam", "Columbus", "Bleecker")
        + ("Mulberry", "Houston", "Canal", "Spring", "Prince", "Grand", "Hudson"),
    ),
    _Metro(
        "Atlanta",
        ("atlanta", "atl"),
        ("404", "770"),
        (("Buckhead",), ("Decatur",), ("Marietta",)),
        ("Peachtree", "Piedmont", "Roswell", "Ponce de Leon", "Highland", "Spring", "Juniper"),
    ),
    _Metro(
        "San Francisco",
        ("san francisco", "s.f.", "sf"),
        ("415",),
        (("Sausalito",), ("Oakland",), ("Berkeley",)),
        ("Mission", "Valencia", "Columbus", "Geary", "Polk", "Market", "Fillmore", "Union"),
    ),
    _Metro(
        "Las Vegas",
        ("las vegas", "vegas"),
        ("702",),
        (("Henderson",),),
        ("Las Vegas", "Flamingo", "Tropicana", "Sahara", "Paradise", "Charleston"),
    ),
    _Metro(
        "Chicago",
        ("chicago",),
        ("312", "773"),
        (("Evanston",), ("Oak Park",)),
        ("Michigan", "Clark", "Halsted", "Wabash", "Rush", "State", "Division", "Randolph"),
    ),
)
# Street-type words as written in full, and the abbreviations the other source uses.
_STREET_TYPES = {
    "Boulevard": ("Blvd.", "Blvd", "Blv."),
    "Avenue": ("Ave.", "Ave", "Av."),
    "Street": ("St.", "St"),
    "Road": ("Rd.", "Rd"),
    "Drive": ("Dr.", "Dr"),
    "Place": ("Pl.",),
    "Way": ("Way",),
}
_DIRECTIONS = {"North": "N.", "South": "S.", "East": "E.", "West": "W."}
_UNITS = ("Suite {n}", "Ste. {n}", "#{n}", "{o} Floor", "{o} Fl.")

_CUISINES_A = ("american", "italian", "french", "asian", "mexican", "delis", "seafood")
# The same cuisine in the other guide's words ("type" is no canonical attribute: an extra).
_CUISINES_B = (
    "american (new)",
    "italian",
    "french bistro",
    "pan-asian",
    "tex-mex",
    "deli",
    "seafood",
)
_TRADES = (
    "Grill",
    "Cafe",
    "Bistro",
    "Kitchen",
    "Diner",
    "Trattoria",
    "Brasserie",
    "Steakhouse",
    "Tavern",
    "Oyster Bar",
    "Deli",
    "Pizzeria",
    "Bar & Grill",
    "Chop House",
    "Noodle House",
    "Taqueria",
    "Delicatessen",
    "Restaurant",
)
_WORDS = (
    "Blue",
    "Golden",
    "Red",
    "Olive",
    "Lemon",
    "Harbor",
    "Garden",
    "Palm",
    "Copper",
    "Silver",
    "Stone",
    "Iron",
    "Wild",
    "Little",
    "Grand",
    "Royal",
    "Lucky",
    "Rose",
    "Sage",
    "Ivy",
)
_THINGS = (
    "Heron",
    "Fig",
    "Door",
    "Lantern",
    "Table",
    "Spoon",
    "Pig",
    "Duck",
    "Oak",
    "Moon",
    "Anchor",
    "Crown",
    "Basil",
    "Onion",
    "Pepper",
    "Rooster",
)
_FOREIGN = (
    "Chez",
    "Trattoria",
    "Casa",
    "Osteria",
    "Cafe",
    "Café",
    "La",
    "Le",
    "Il",
    "Taverna",
)
_FOREIGN_WORDS = (
    "Lumière",
    "Bella",
    "Sole",
    "Luna",
    "Paris",
    "Roma",
    "Provence",
    "Toscana",
    "Vida",
    "Fiesta",
    "Jardin",
    "Marché",
    "Pescatore",
    "Bacio",
    "Amici",
)
# Chains: one name, branches with their own street and phone (the hard negatives of name).
_CHAINS = (
    "California Pizza Kitchen",
    "The Cheesecake Factory",
    "Johnny Rockets",
    "Hard Rock Cafe",
    "Benihana",
    "Ruth's Chris Steak House",
    "Morton's of Chicago",
    "Planet Hollywood",
    "Jerry's Famous Deli",
    "Le Pain Quotidien",
    "Shake Shack",
    "Wolfgang Puck Cafe",
)
_HOSTS = ("Hotel", "Plaza", "Center", "Galleria", "Towers", "Inn", "Mall")


def _restaurant_name(fake: Faker, rng: random.Random) -> str:
    pattern = rng.random()
    if pattern < 0.25:  # "Art's Delicatessen", "Musso & Frank Grill"
        owner = fake.first_name() if rng.random() < 0.6 else fake.last_name()
        if rng.random() < 0.3:
            return f"{owner} & {fake.last_name()} {rng.choice(_TRADES)}"
        return f"{owner}'s {rng.choice(_TRADES)}" if rng.random() < 0.8 else f"{owner}'s"
    if pattern < 0.45:  # "The Blue Heron", "Golden Lantern Cafe"
        name = f"{rng.choice(_WORDS)} {rng.choice(_THINGS)}"
        if rng.random() < 0.4:
            return f"The {name}"
        return f"{name} {rng.choice(_TRADES)}" if rng.random() < 0.5 else name
    if pattern < 0.65:  # "Chez Lumière", "Café Luna", "Trattoria Bella"
        return f"{rng.choice(_FOREIGN)} {rng.choice(_FOREIGN_WORDS)}"
    if pattern < 0.8:  # "The Palm", "Spago", "Valentino": one word
        word = rng.choice((fake.last_name(), rng.choice(_FOREIGN_WORDS), rng.choice(_THINGS)))
        return f"The {word}" if rng.random() < 0.3 else word
    # "Rosewood Kitchen and Bar", "Morton's of Chicago"-like
    return f"{fake.last_name()} {rng.choice(_TRADES)}"


def _street(fake: Faker, rng: random.Random, metro: _Metro) -> dict[str, str]:
    direction = rng.choice(tuple(_DIRECTIONS)) if rng.random() < 0.25 else ""
    name = rng.choice(metro.streets) if rng.random() < 0.7 else fake.last_name()
    if rng.random() < 0.15:
        name = rng.choice(("2nd", "3rd", "5th", "7th", "9th", "14th", "21st", "44th", "57th"))
    return {
        "number": str(rng.randint(1, 13000) if rng.random() < 0.7 else rng.randint(1, 999)),
        "direction": direction,
        "name": name,
        "type": rng.choice(tuple(_STREET_TYPES)),
        "unit": rng.choice(_UNITS).format(
            n=rng.randint(100, 450), o=rng.choice(("2nd", "3rd", "Lobby", "Ground"))
        )
        if rng.random() < 0.15
        else "",
    }


def _phone_digits(rng: random.Random, metro: _Metro) -> str:
    exchange = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
    while exchange[1:] == "11" or exchange == "555":
        exchange = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
    return rng.choice(metro.area_codes) + exchange + f"{rng.randint(0, 9999):04d}"


@dataclass
class _Place:
    name: str
    street: dict[str, str]
    metro: _Metro
    district: tuple[str, ...] | None
    phone: str
    cuisine: int
    host: str = ""  # the hotel or mall it is in


def _address(rng: random.Random, place: _Place, *, source: str, keep_unit: bool) -> str:
    street = place.street
    words = [street["number"]]
    if street["direction"]:
        full = street["direction"]
        words.append(_DIRECTIONS[full] if source == "a" or rng.random() < 0.5 else full)
    words.append(street["name"])
    full_type = street["type"]
    if source == "a":  # guide a abbreviates, sometimes with its own odd spelling
        words.append(rng.choice(_STREET_TYPES[full_type]) if rng.random() < 0.8 else full_type)
    else:
        words.append(full_type if rng.random() < 0.5 else _STREET_TYPES[full_type][0])
    address = " ".join(words)
    if street["unit"] and keep_unit:
        address += f", {street['unit']}" if rng.random() < 0.7 else f" {street['unit']}"
    if place.host and rng.random() < (0.5 if source == "a" else 0.2):
        address += f" (in the {place.host})" if source == "a" else f", {place.host}"
    return address


def _city(rng: random.Random, place: _Place, *, source: str) -> str:
    if place.district is not None:
        if source == "a":
            return place.district[0]
        if rng.random() < 0.3:  # the other guide files it under the metro
            return rng.choice(place.metro.aliases)
        return rng.choice(place.district[1:] or place.district).lower()
    if source == "a":
        return place.metro.city
    return rng.choice(place.metro.aliases)


def _phone(rng: random.Random, digits: str, *, source: str) -> str:
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    if source == "a":
        return f"{area}/{exchange}-{line}" if rng.random() < 0.9 else f"({area}) {exchange}-{line}"
    return f"{area}-{exchange}-{line}"


def _other_spelling(rng: random.Random, name: str, place: _Place) -> str:
    """The second guide's spelling of a name it shares with the first."""
    if rng.random() < 0.35 and "Delicatessen" in name:
        name = name.replace("Delicatessen", "Deli")
    elif rng.random() < 0.3 and "Deli" in name.split():
        name = name.replace("Deli", "Delicatessen")
    if "&" in name and rng.random() < 0.5:
        name = name.replace("&", "and")
    elif " and " in name and rng.random() < 0.5:
        name = name.replace(" and ", " & ")
    if name.startswith("The "):
        if rng.random() < 0.4:
            name = name[4:]
    elif rng.random() < 0.05:
        name = f"The {name}"
    if "Café" in name and rng.random() < 0.7:
        name = name.replace("Café", "Cafe")
    if rng.random() < 0.12:
        name = name.replace("'", "")
    if rng.random() < 0.06 and not name.endswith("Restaurant"):
        name = f"{name} Restaurant"
    if rng.random() < 0.1:  # the branch or neighbourhood as a suffix
        where = place.district[0] if place.district else place.metro.city
        name = f"{name} ({where})" if rng.random() < 0.7 else f"{name} - {where}"
    if rng.random() < 0.08:
        name = _typo(rng, name)
    return name


def restaurant_export(
    *, organizations: int = 600, overlap: float = 0.2, seed: int = 7
) -> SparseSet:
    """`organizations` businesses; `overlap` of them listed by both guides ("a" and "b"), the
    rest by one. About 8% are branches of a chain (one name, their own street and phone) and
    about 10% share a hotel or mall with one or two others (one street address; a hotel's
    restaurants often its switchboard). Source "b" writes everything in lower case."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(rng.randrange(2**31))
    places: list[_Place] = []
    while len(places) < organizations:
        metro = rng.choice(_METROS)
        district = rng.choice(metro.districts) if rng.random() < 0.3 else None
        draw = rng.random()
        if draw < 0.04:  # a chain: two or three branches, one name
            name = rng.choice(_CHAINS)
            for _ in range(rng.randint(2, 3)):
                branch_metro = metro if rng.random() < 0.6 else rng.choice(_METROS)
                places.append(
                    _Place(
                        name,
                        _street(fake, rng, branch_metro),
                        branch_metro,
                        None,
                        _phone_digits(rng, branch_metro),
                        rng.randrange(7),
                    )
                )
        elif draw < 0.09:  # a hotel or mall: two or three restaurants at one address
            street = _street(fake, rng, metro)
            street["unit"] = ""
            host = f"{fake.last_name()} {rng.choice(_HOSTS)}"
            switchboard = _phone_digits(rng, metro)
            for _ in range(rng.randint(2, 3)):
                phone = switchboard if rng.random() < 0.5 else _phone_digits(rng, metro)
                places.append(
                    _Place(
                        _restaurant_name(fake, rng),
                        street,
                        metro,
                        district,
                        phone,
                        rng.randrange(7),
                        host,
                    )
                )
        else:
            places.append(
                _Place(
                    _restaurant_name(fake, rng),
                    _street(fake, rng, metro),
                    metro,
                    district,
                    _phone_digits(rng, metro),
                    rng.randrange(7),
                )
            )
    places = places[:organizations]
    rows: dict[str, list[dict[str, str]]] = {"a": [], "b": []}
    truth: dict[tuple[str, str], str] = {}
    for number, place in enumerate(places, start=1):
        draw = rng.random()
        systems = ("a", "b") if draw < overlap else ("a",) if draw < (1 + overlap) / 2 else ("b",)
        phone_b = place.phone
        if len(systems) == 2 and rng.random() < 0.05:  # a new number (an area-code split)
            phone_b = _phone_digits(rng, place.metro)
        street_b = place.street
        if len(systems) == 2 and rng.random() < 0.03:  # moved between the two guides
            street_b = _street(fake, rng, place.metro)
        for system in systems:
            second = system == "b" and len(systems) == 2
            where = _Place(
                place.name,
                street_b if system == "b" else place.street,
                place.metro,
                place.district,
                phone_b if system == "b" else place.phone,
                place.cuisine,
                place.host,
            )
            name = _other_spelling(rng, place.name, place) if second else place.name
            row = {
                "id": f"{system}{len(rows[system]) + 1}",
                "name": name,
                "addr": _address(rng, where, source=system, keep_unit=rng.random() < 0.6),
                "city": _city(rng, where, source=system),
                "phone": _phone(rng, where.phone, source=system),
                "type": (_CUISINES_A if system == "a" else _CUISINES_B)[place.cuisine],
            }
            if rng.random() < 0.04:
                row["phone"] = ""
            if rng.random() < 0.03:
                row["addr"] = ""
            if system == "b":
                row = {column: value.lower() for column, value in row.items()}
            rows[system].append(row)
            truth[(system, row["id"])] = f"PLACE{number}"
    for system_rows in rows.values():
        rng.shuffle(system_rows)
    return SparseSet(rows=rows, truth=truth, columns=EXPORT_COLUMNS, mapping=EXPORT_MAPPING)
