"""Admin for tokens, webhook subscriptions and deliveries: inspect, revoke, replay."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import render
from django.utils import timezone

from api.authentication import revoke_tokens
from api.models import IntegrationToken, WebhookDelivery, WebhookSubscription, new_webhook_secret
from api.scopes import SCOPES
from api.webhooks import replay, starting_cursor


class IntegrationTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(name, f"{name} — {meaning}") for name, meaning in SCOPES.items()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = IntegrationToken
        fields = ["scopes", "revoked"]


@admin.register(IntegrationToken)
class IntegrationTokenAdmin(admin.ModelAdmin):
    """Tokens are issued by `manage.py create_integration` (shown once); here an operator
    changes a token's scopes or revokes it — effective at once in every process."""

    form = IntegrationTokenForm
    list_display = ["source_system", "prefix", "scope_list", "created_at", "last_used_at"]
    list_display += ["revoked"]
    list_filter = ["revoked", "source_system"]
    readonly_fields = ["source_system", "prefix", "token_hash", "created_at", "last_used_at"]
    readonly_fields += ["revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # tokens are issued by `manage.py create_integration`, shown once

    @admin.display(description="scopes")
    def scope_list(self, token: IntegrationToken) -> str:
        return ", ".join(token.scopes)

    def save_model(self, request, obj, form, change):
        if obj.revoked and obj.revoked_at is None:
            obj.revoked_at = timezone.now()
        super().save_model(request, obj, form, change)  # post_save: tokens_changed()

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        count = revoke_tokens(queryset)
        self.message_user(request, f"Revoked {count} token(s).")


class ReplayForm(forms.Form):
    after = forms.IntegerField(
        min_value=0, initial=0, help_text="Replay every event with a sequence number above this."
    )


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """The signing secret is never shown on the change page (anyone who can read the admin
    could forge deliveries with it): it is shown once, when the subscription is added here or
    rotated by the action, on a page the browser is told not to store."""

    list_display = ["__str__", "url", "active", "owner", "last_event_id", "created_at"]
    list_filter = ["active", "owner"]
    exclude = ["secret"]
    readonly_fields = ["signing_secret", "last_event_id", "created_at", "updated_at"]
    actions = ["replay_from_sequence", "rotate_secret"]

    @admin.display(description="signing secret")
    def signing_secret(self, subscription: WebhookSubscription) -> str:
        if subscription.pk is None:
            return "generated when saved, and shown once then"
        if not subscription.secret:
            return "—"
        return f"…{subscription.secret[-4:]} (shown once when created or rotated)"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.last_event_id = starting_cursor()  # from now, as through the API
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        return self._show_secrets(request, [obj], "Webhook subscription added")

    @admin.action(description="Rotate the signing secret (shown once)", permissions=["change"])
    def rotate_secret(self, request, queryset):
        rotated = []
        with transaction.atomic():
            for subscription in queryset.select_for_update():
                subscription.secret = new_webhook_secret()
                subscription.save(update_fields=["secret", "updated_at"])
                rotated.append(subscription)
        return self._show_secrets(request, rotated, "Signing secrets rotated")

    def _show_secrets(self, request, subscriptions, title):
        response = render(
            request,
            "admin/api/secrets.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "subscriptions": subscriptions,
                "changelist": "admin:api_webhooksubscription_changelist",
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Replay from a sequence number…", permissions=["change"])
    def replay_from_sequence(self, request, queryset):
        form = ReplayForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            from api.tasks import nudge_deliveries

            after = form.cleaned_data["after"]
            total = sum(replay(subscription=s, after=after) for s in queryset)
            transaction.on_commit(nudge_deliveries)
            self.message_user(request, f"Replaying {total} deliveries after #{after}.")
            return None
        return render(
            request,
            "admin/api/replay.html",
            {
                **self.admin_site.each_context(request),
                "title": "Replay webhook events",
                "subscriptions": queryset,
                "form": form,
                "action": "replay_from_sequence",
            },
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "subscription", "event_id", "status", "attempts", "next_attempt_at"]
    list_display += ["response_code"]
    list_filter = ["status", "subscription"]
    list_select_related = ["subscription"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["redeliver"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Deliver selected again", permissions=["change"])
    def redeliver(self, request, queryset):
        from api.tasks import nudge_deliveries

        count = queryset.update(status="pending", attempts=0, next_attempt_at=timezone.now())
        transaction.on_commit(nudge_deliveries)
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)
