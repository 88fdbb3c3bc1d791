"""Match models and runs on the desk: stage a threshold change or a retrain, read what a
staged version would change, activate or discard it (with a reason); the audit view of a
finished run. The rules live in `matching.activation`; these views only call it."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse

from matching.activation import activate_model, discard_model, stage_thresholds
from matching.models import MatchModel, MatchRun
from matching.scoring import thresholds_of
from matching.specs import SPECS
from matching.tasks import stage_retrained_task
from mdm.errors import InvalidResolution
from mdm.services.audit import actor_label
from stewardship.selectors import last_match_runs, run_audit
from stewardship.views.base import StewardView, reason_from, steward_of

OLDER_VERSIONS = 5


def model_url(model: MatchModel) -> str:
    return reverse("stewardship:model", args=[model.pk])


def _probability(request: HttpRequest, name: str) -> float:
    try:
        return float(request.POST.get(name, "").replace(",", "."))
    except ValueError:
        raise InvalidResolution(f"{name.replace('_', '-')}: a probability such as 0.95") from None


class ModelListView(StewardView):
    template_name = "stewardship/models.html"
    title = "Match models and runs"
    section = "models"
    actions = ("stage_thresholds", "retrain")

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        versions = MatchModel.objects.defer("settings", "training_report").select_related(
            "activated_by", "discarded_by"
        )
        by_entity: dict[str, list[MatchModel]] = {name: [] for name in SPECS}
        for model in versions.order_by("entity_type", "-version"):
            by_entity.setdefault(model.entity_type, []).append(model)
        entities = []
        for name, models in by_entity.items():
            active = next((m for m in models if m.is_active), None)
            entities.append(
                {
                    "name": name,
                    "active": active,
                    "thresholds": thresholds_of(active) if active else None,
                    "staged": [m for m in models if m.state == "staged"],
                    "older": [m for m in models if m.state in ("retired", "discarded")][
                        :OLDER_VERSIONS
                    ],
                }
            )
        context.update(entities=entities, runs=last_match_runs(20))
        return context

    def do_stage_thresholds(self, request: HttpRequest) -> HttpResponse:
        entity = request.POST.get("entity", "")
        if entity not in SPECS:
            raise InvalidResolution(f"no match model for {entity!r}")
        staged = stage_thresholds(
            entity_type=entity,
            auto_link=_probability(request, "auto_link"),
            review=_probability(request, "review"),
            actor=steward_of(request),
            reason=reason_from(request),
        )
        messages.success(request, f"Staged {staged}: read what it would change, then decide.")
        return HttpResponseRedirect(model_url(staged))

    def do_retrain(self, request: HttpRequest) -> HttpResponse:
        entity = request.POST.get("entity", "")
        if entity not in SPECS:
            raise InvalidResolution(f"no match model for {entity!r}")
        actor, reason = actor_label(steward_of(request)), reason_from(request, "retrain")
        transaction.on_commit(lambda: stage_retrained_task.delay(entity, actor, reason))
        messages.success(
            request,
            f"Retraining the {entity} model: the new version is staged here with what it would "
            "change; nothing is applied until a steward activates it.",
        )
        return HttpResponseRedirect(reverse("stewardship:models"))


class ModelView(StewardView):
    template_name = "stewardship/model.html"
    section = "models"
    actions = ("activate_model", "discard_model")

    def get_model(self) -> MatchModel:
        return get_object_or_404(
            MatchModel.objects.defer("settings").select_related(
                "compared_with", "activated_by", "discarded_by"
            ),
            pk=self.kwargs["pk"],
        )

    def get_title(self) -> str:
        return f"Match model #{self.kwargs['pk']}"

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        model = self.get_model()
        context.update(model=model, diff=model.diff, thresholds=thresholds_of(model))
        return context

    def do_activate_model(self, request: HttpRequest, pk: int) -> HttpResponse:
        model = activate_model(
            model=self.get_model(), actor=steward_of(request), reason=reason_from(request)
        )
        messages.success(request, f"{model} is active: the next match run applies it.")
        return HttpResponseRedirect(model_url(model))

    def do_discard_model(self, request: HttpRequest, pk: int) -> HttpResponse:
        model = discard_model(
            model=self.get_model(), actor=steward_of(request), reason=reason_from(request)
        )
        messages.success(request, f"{model} discarded.")
        return HttpResponseRedirect(model_url(model))


class RunView(StewardView):
    template_name = "stewardship/run.html"
    section = "models"

    def get_title(self) -> str:
        return f"Match run #{self.kwargs['pk']}"

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        run = MatchRun.objects.select_related("model").filter(pk=self.kwargs["pk"]).first()
        if run is None:
            raise Http404("no such match run")
        context.update(audit=run_audit(run))
        return context
