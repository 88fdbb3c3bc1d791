"""Create (or rotate) the API token of an integration and print it once.

    python manage.py create_integration crm [--name "Salesforce CRM"]

Creates source system CODE when missing. Any active token of that system is revoked: the
token printed here is the only one that works afterwards. Only its hash is stored.
"""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from api.models import IntegrationToken
from mdm.services.ingest import get_source_system


class Command(BaseCommand):
    help = "Create or rotate the API token of integration CODE (a source system) and print it."

    def add_arguments(self, parser):
        parser.add_argument("code", help="Source system code, e.g. crm")
        parser.add_argument("--name", default="", help="Display name for a new source system")

    def handle(self, *args, code, name, **options):
        with transaction.atomic():
            system = get_source_system(code, create=True)
            if name and system.name != name:
                system.name = name
                system.save(update_fields=["name"])
            revoked = IntegrationToken.objects.filter(source_system=system, revoked=False).update(
                revoked=True, revoked_at=timezone.now()
            )
            _, token = IntegrationToken.issue(system)
        if revoked:
            self.stderr.write(f"revoked {revoked} previous token(s) of {system.code}")
        self.stderr.write(f"token for integration {system.code} (shown once, store it now):")
        self.stdout.write(token)
