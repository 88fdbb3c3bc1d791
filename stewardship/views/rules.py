"""Survivorship rules: the rule in force per entity attribute; edit with a preview first."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse

from mdm.entities import ENTITIES, STRATEGY_LABELS
from mdm.models import SourceSystem, SurvivorshipRule
from mdm.services.golden import SurvivorshipInputs
from mdm.services.rules import current_rule, preview_rule_change, update_rule
from stewardship.views.base import StewardView, reason_from


class RuleListView(StewardView):
    template_name = "stewardship/rules.html"
    title = "Survivorship rules"
    section = "rules"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        inputs = SurvivorshipInputs.load(ENTITIES)
        stored = {(r.entity_type, r.attribute): r for r in SurvivorshipRule.objects.all()}
        tables = []
        for name, entity in ENTITIES.items():
            rows = []
            for field in entity.survived_fields:
                rule = inputs.rules[name][field]
                rows.append(
                    {
                        "field": field,
                        "strategy": STRATEGY_LABELS[rule.strategy],
                        "system_order": rule.system_order,
                        "custom": (name, field) in stored,
                        "default": STRATEGY_LABELS[entity.default_strategy(field)],
                        "updated_at": getattr(stored.get((name, field)), "updated_at", None),
                    }
                )
            tables.append((name, rows))
        recent = SurvivorshipRule.history.select_related("history_user").order_by("-history_date")[
            :20
        ]
        context.update(tables=tables, recent=recent)
        return context


def order_from(text: str) -> list[str]:
    return [code.strip() for code in text.replace("\n", ",").split(",") if code.strip()]


class RuleEditView(StewardView):
    template_name = "stewardship/rule_edit.html"
    section = "rules"
    actions = ("preview_rule", "save_rule")

    def dispatch(self, request, *args, **kwargs):
        entity = ENTITIES.get(kwargs["entity"])
        if entity is None or kwargs["attribute"] not in entity.survived_fields:
            raise Http404("no such rule")
        self.entity = entity
        return super().dispatch(request, *args, **kwargs)

    def get_title(self) -> str:
        return f"Rule for {self.kwargs['entity']}.{self.kwargs['attribute']}"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        entity_type, attribute = self.kwargs["entity"], self.kwargs["attribute"]
        rule = current_rule(entity_type, attribute)
        context.update(
            entity_type=entity_type,
            attribute=attribute,
            rule=rule,
            strategies=STRATEGY_LABELS,
            default=STRATEGY_LABELS[self.entity.default_strategy(attribute)],
            systems=SourceSystem.objects.values_list("code", flat=True),
            form_strategy=kwargs.get("form_strategy", rule.strategy),
            form_order=kwargs.get("form_order", ", ".join(rule.system_order)),
            form_reason=kwargs.get("form_reason", ""),
            preview=kwargs.get("preview"),
            history=SurvivorshipRule.history.filter(entity_type=entity_type, attribute=attribute)
            .select_related("history_user")
            .order_by("-history_date")[:50],
        )
        return context

    def _form(self, request):
        return request.POST.get("strategy", ""), order_from(request.POST.get("system_order", ""))

    def do_preview_rule(self, request, entity, attribute):
        strategy, order = self._form(request)
        preview = preview_rule_change(
            entity_type=entity, attribute=attribute, strategy=strategy, system_order=order
        )
        return self.render_to_response(
            self.get_context_data(
                preview=preview,
                form_strategy=strategy,
                form_order=", ".join(order),
                form_reason=request.POST.get("reason", ""),
            )
        )

    def do_save_rule(self, request, entity, attribute):
        strategy, order = self._form(request)
        _, preview = update_rule(
            entity_type=entity,
            attribute=attribute,
            strategy=strategy,
            system_order=order,
            actor=request.user,
            reason=reason_from(request),
        )
        messages.success(
            request,
            f"Rule for {entity}.{attribute} saved; {preview.affected} golden record(s) recomputed.",
        )
        return HttpResponseRedirect(reverse("stewardship:rule", args=[entity, attribute]))
