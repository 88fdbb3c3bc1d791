"""Matching's domain errors (subclasses of `mdm.errors.MdmError`, so callers map them alike)."""

from mdm.errors import MdmError


class NoActiveModel(MdmError):
    """No trained model is active for the entity type: run `run_matching ENTITY` first."""

    def __init__(self, entity_type: str) -> None:
        super().__init__(
            f"no active match model for {entity_type!r}: run `manage.py run_matching "
            f"{entity_type}` to train one"
        )
        self.entity_type = entity_type


class SourceRecordNotFound(MdmError):
    def __init__(self, record_id: object) -> None:
        super().__init__(f"no source record {record_id!r}")
        self.record_id = record_id


class NothingToLearn(MdmError):
    """Training found nothing in the data to learn from (no two records agree on any
    deterministic rule, or too few records to sample from): no model is stored."""

    def __init__(self, entity_type: str, reason: str) -> None:
        super().__init__(f"cannot train a {entity_type} match model: {reason}")
        self.entity_type = entity_type
        self.reason = reason
