"""The Integrations page: per source system what came in over the last day, what was
rejected (replayable), its mapping version and token use; per webhook subscription how far
it lags and what sits in dead letters (replayable). Auditors read it; the replays need
`stewardship.operate_integrations`."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpResponseRedirect

from mdm.selectors import SourceActivity
from stewardship.selectors import integrations_overview
from stewardship.services import replay_source_rejections, replay_subscription_dead_letters
from stewardship.views.base import StewardView, steward_of

CHART_HEIGHT = 36
BAR_WIDTH, BAR_GAP = 7, 1


@dataclass(frozen=True)
class Bar:
    x: int
    width: int
    received_y: int
    received_height: int
    rejected_y: int
    rejected_height: int
    label: str


def volume_bars(activity: SourceActivity, *, height: int = CHART_HEIGHT) -> list[Bar]:
    """One bar per hour, scaled to the busiest hour: received records, the rejected part
    drawn over its foot. A non-empty hour is at least one pixel tall."""
    peak = max(activity.received, default=0) or 1
    bars = []
    for index, (hour, received, rejected) in enumerate(
        zip(activity.hours, activity.received, activity.rejected, strict=True)
    ):
        tall = round(received / peak * height) or (1 if received else 0)
        red = round(rejected / peak * height) or (1 if rejected else 0)
        bars.append(
            Bar(
                x=index * (BAR_WIDTH + BAR_GAP),
                width=BAR_WIDTH,
                received_y=height - tall,
                received_height=tall,
                rejected_y=height - red,
                rejected_height=red,
                label=f"{hour:%H}:00 UTC — {received} received, {rejected} rejected",
            )
        )
    return bars


class IntegrationsView(StewardView):
    template_name = "stewardship/integrations.html"
    title = "Integrations"
    section = "integrations"
    actions = ("replay_rejections", "replay_dead_letters")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        overview = integrations_overview()
        context.update(
            rows=[(row, volume_bars(row.activity)) for row in overview.rows],
            subscriptions=overview.subscriptions,
            chart_height=CHART_HEIGHT,
            chart_width=24 * (BAR_WIDTH + BAR_GAP),
        )
        return context

    def do_replay_rejections(self, request):
        system = request.POST.get("system", "")
        counts = replay_source_rejections(system_code=system, actor=steward_of(request))
        messages.success(
            request,
            f"{system}: {counts['replayed']} rejected record(s) loaded, "
            f"{counts['still_rejected']} still rejected.",
        )
        return HttpResponseRedirect(request.get_full_path())

    def do_replay_dead_letters(self, request):
        try:
            subscription_id = int(request.POST.get("subscription", ""))
        except ValueError:
            messages.error(request, "No subscription given.")
            return HttpResponseRedirect(request.get_full_path())
        count = replay_subscription_dead_letters(subscription_id=subscription_id)
        messages.success(request, f"{count} dead-lettered deliver(ies) will be sent again.")
        return HttpResponseRedirect(request.get_full_path())
