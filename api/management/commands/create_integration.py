"""Create (or rotate) the API token of an integration and print it once.

    python manage.py create_integration crm [--name "Salesforce CRM"] [--scopes LIST]
    python manage.py create_integration --list-scopes

Creates source system CODE when missing. Any active token of that system is revoked (at once,
in every process): the token printed here is the only one that works afterwards. Only its
hash is stored. `--scopes` is a comma-separated list of scopes, where `default` stands for
every scope but `golden:read_sensitive` and `all` for every scope (default: `default`).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from api.authentication import revoke_tokens
from api.models import IntegrationToken
from api.scopes import DEFAULT_SCOPES, SCOPES
from mdm.services.ingest import get_source_system

ALIASES = {"default": DEFAULT_SCOPES, "all": tuple(SCOPES)}


def parse_scopes(text: str) -> list[str]:
    scopes: list[str] = []
    for word in (w.strip() for w in text.split(",")):
        if word in ALIASES:
            scopes.extend(ALIASES[word])
        elif word in SCOPES:
            scopes.append(word)
        elif word:
            known = ", ".join([*ALIASES, *SCOPES])
            raise CommandError(f"unknown scope {word!r}; known: {known}")
    if not scopes:
        raise CommandError("--scopes names no scope")
    return list(dict.fromkeys(scopes))


class Command(BaseCommand):
    help = "Create or rotate the API token of integration CODE (a source system) and print it."

    def add_arguments(self, parser):
        parser.add_argument("code", nargs="?", help="Source system code, e.g. crm")
        parser.add_argument("--name", default="", help="Display name for a new source system")
        parser.add_argument(
            "--scopes",
            default="default",
            help="Comma-separated scopes; 'default' = all but golden:read_sensitive, 'all'",
        )
        parser.add_argument("--list-scopes", action="store_true", help="List the scopes and exit")

    def handle(self, *args, code, name, scopes, list_scopes, **options):
        if list_scopes:
            for scope, meaning in SCOPES.items():
                marker = "default" if scope in DEFAULT_SCOPES else "       "
                self.stdout.write(f"{scope:24} {marker}  {meaning}")
            return
        if not code:
            raise CommandError("give the integration's CODE (or --list-scopes)")
        granted = parse_scopes(scopes)
        with transaction.atomic():
            system = get_source_system(code, create=True)
            if name and system.name != name:
                system.name = name
                system.save(update_fields=["name"])
            revoked = revoke_tokens(IntegrationToken.objects.filter(source_system=system))
            _, token = IntegrationToken.issue(system, scopes=granted)
        if revoked:
            self.stderr.write(f"revoked {revoked} previous token(s) of {system.code}")
        self.stderr.write(f"scopes: {', '.join(granted)}")
        self.stderr.write(f"token for integration {system.code} (shown once, store it now):")
        self.stdout.write(token)
