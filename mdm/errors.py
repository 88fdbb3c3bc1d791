"""Domain exceptions. Services raise these; the API and commands map them to responses."""


class MdmError(Exception):
    """Base of every domain error."""


class UnknownEntity(MdmError):
    def __init__(self, name: object) -> None:
        super().__init__(f"unknown entity type: {name!r}")
        self.name = name


class UnknownSourceSystem(MdmError):
    def __init__(self, code: object) -> None:
        super().__init__(f"unknown source system: {code!r}")
        self.code = code


class GoldenRecordNotFound(MdmError):
    def __init__(self, golden_id: object) -> None:
        super().__init__(f"no golden record {golden_id!r}")
        self.golden_id = golden_id


class InvalidResolution(MdmError):
    """A link/merge/split that would break an invariant (wrong entity, inactive record, …)."""


class SourceRecordNotFound(MdmError):
    def __init__(self, entity_type: str, system_code: str, source_key: str) -> None:
        super().__init__(f"no {entity_type} source record {system_code}:{source_key}")
        self.entity_type, self.system_code, self.source_key = entity_type, system_code, source_key


class CandidateClaimed(MdmError):
    """Another steward is working on this match candidate (a claim that has not expired)."""

    def __init__(self, candidate_id: object, steward: str, until: object) -> None:
        super().__init__(
            f"candidate #{candidate_id} is being reviewed by {steward} (claimed until {until})"
        )
        self.candidate_id = candidate_id
        self.steward = steward


class ConcurrentChange(MdmError):
    """Other transactions kept changing the same records; nothing was written. Try again."""


class IngestInterrupted(MdmError):
    """The database connection was lost while a chunk loaded, on every attempt. That chunk's
    transaction rolled back whole; the chunks before it are loaded, the rest were not tried."""

    def __init__(self, *, first_line: int | None, last_line: int | None, attempts: int) -> None:
        where = f"lines {first_line}–{last_line}" if first_line is not None else "a chunk"
        super().__init__(
            f"{where} not loaded: the database connection was lost ({attempts} attempts); "
            "the lines before are loaded, the ones after were not tried"
        )
        self.first_line, self.last_line, self.attempts = first_line, last_line, attempts
