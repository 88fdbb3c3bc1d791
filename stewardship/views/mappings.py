"""Source mappings: which version each system applies, and a page per system and entity to
try a mapping on sample payloads (before, after, rejections) and save it as a new version."""

from __future__ import annotations

import json
from typing import Any

import yaml
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse

from mdm.entities import ENTITIES
from mdm.mappings import InvalidMapping, compile_mapping, in_target_order
from mdm.models import IngestRejection, RejectionStatus, SourceMapping, SourceRecord
from mdm.services.mappings import (
    activate_mapping_version,
    preview_mapping,
    save_mapping_version,
)
from stewardship.views.base import StewardView, reason_from

SAMPLE_RECORDS = 3  # payloads offered as samples: the latest records, and open rejections


class MappingListView(StewardView):
    template_name = "stewardship/mappings.html"
    title = "Source mappings"
    section = "mappings"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        versions = list(
            SourceMapping.objects.select_related("source_system").order_by(
                "source_system__code", "entity_type", "-version"
            )
        )
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for mapping in versions:
            key = (mapping.source_system.code, mapping.entity_type)
            row = rows.setdefault(key, {"system": key[0], "entity": key[1], "active": None,
                                        "versions": 0, "latest": mapping})  # fmt: skip
            row["versions"] += 1
            if mapping.active:
                row["active"] = mapping
        context.update(rows=list(rows.values()), entities=list(ENTITIES))
        return context


def parse_samples(text: str) -> list[Any]:
    """Samples as a JSON array, one JSON object, or one JSON value per line."""
    text = text.strip()
    if not text:
        return []
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return parsed if isinstance(parsed, list) else [parsed]


def parse_spec(text: str) -> Any:
    """The mapping as typed on the page: JSON or YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidMapping([("mapping", f"not valid JSON or YAML: {error}")]) from None


class MappingEditView(StewardView):
    template_name = "stewardship/mapping_edit.html"
    section = "mappings"
    actions = ("preview_mapping", "save_mapping", "activate_mapping")

    def dispatch(self, request, *args, **kwargs):
        if kwargs["entity"] not in ENTITIES:
            raise Http404("no such entity type")
        return super().dispatch(request, *args, **kwargs)

    def get_title(self) -> str:
        return f"Mapping for {self.kwargs['system']} {self.kwargs['entity']}"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        system, entity = self.kwargs["system"], self.kwargs["entity"]
        versions = SourceMapping.objects.filter(
            source_system__code=system, entity_type=entity
        ).order_by("-version")
        active = next((v for v in versions if v.active), None)
        shown = active or versions.first()
        context.update(
            system=system,
            entity_type=entity,
            active=active,
            versions=versions,
            form_spec=kwargs.get("form_spec")
            or (
                json.dumps(in_target_order(shown.spec, entity), indent=2, ensure_ascii=False)
                if shown
                else ""
            ),
            form_samples=kwargs.get("form_samples") or self._default_samples(system, entity),
            form_note=kwargs.get("form_note", ""),
            problems=kwargs.get("problems"),
            preview=kwargs.get("preview"),
        )
        return context

    @staticmethod
    def _default_samples(system: str, entity: str) -> str:
        """The latest payloads as sent, then open rejections: what a mapping must handle."""
        payloads = list(
            SourceRecord.objects.filter(source_system__code=system, entity_type=entity)
            .order_by("-updated_at", "-id")
            .values_list("raw", flat=True)[:SAMPLE_RECORDS]
        )
        payloads += IngestRejection.objects.filter(
            source_system=system, entity_type=entity, status=RejectionStatus.OPEN
        ).values_list("payload", flat=True)[:SAMPLE_RECORDS]
        return "\n".join(json.dumps(p, ensure_ascii=False) for p in payloads)

    def _form(self, request) -> dict[str, str]:
        return {
            "form_spec": request.POST.get("spec", ""),
            "form_samples": request.POST.get("samples", ""),
            "form_note": request.POST.get("reason", ""),
        }

    def do_preview_mapping(self, request, system, entity):
        form = self._form(request)
        try:
            mapping = compile_mapping(parse_spec(form["form_spec"]), entity_type=entity,
                                      system=system)  # fmt: skip
        except InvalidMapping as error:
            return self.render_to_response(self.get_context_data(problems=error.problems, **form))
        try:
            samples = parse_samples(form["form_samples"])
        except json.JSONDecodeError as error:
            problems = [("samples", f"not valid JSON: {error.msg} (line {error.lineno})")]
            return self.render_to_response(self.get_context_data(problems=problems, **form))
        rows = preview_mapping(mapping=mapping, payloads=samples, system_code=system)
        for row in rows:
            row["payload_text"] = json.dumps(row["payload"], indent=2, ensure_ascii=False)
        preview = {"rows": rows, "rejected": sum(1 for r in rows if r["rejection"])}
        return self.render_to_response(self.get_context_data(preview=preview, **form))

    def do_save_mapping(self, request, system, entity):
        form = self._form(request)
        try:
            mapping = save_mapping_version(
                system_code=system,
                entity_type=entity,
                spec=parse_spec(form["form_spec"]),
                actor=request.user,
                note=reason_from(request),
            )
        except InvalidMapping as error:
            return self.render_to_response(self.get_context_data(problems=error.problems, **form))
        messages.success(request, f"Mapping v{mapping.version} saved; ingest applies it now.")
        return HttpResponseRedirect(reverse("stewardship:mapping", args=[system, entity]))

    def do_activate_mapping(self, request, system, entity):
        mapping = SourceMapping.objects.filter(
            source_system__code=system, entity_type=entity, pk=request.POST.get("mapping") or 0
        ).first()
        if mapping is None:
            raise Http404("no such mapping version")
        activate_mapping_version(
            mapping=mapping, actor=request.user, reason=reason_from(request, "activated")
        )
        messages.success(request, f"Mapping v{mapping.version} is active again.")
        return HttpResponseRedirect(reverse("stewardship:mapping", args=[system, entity]))
