"""`manage.py setup_roles [--user NAME:ROLE …]`: create the steward and auditor groups."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from stewardship.roles import ROLES, setup_roles


class Command(BaseCommand):
    help = (
        "Create (or reset) the groups 'steward' (decide, merge, split, pin, edit rules) and "
        "'auditor' (read everything including history, change nothing)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            metavar="NAME:ROLE",
            help="Also put an existing user in a role (and give them admin access).",
        )

    def handle(self, *args, user, **options):
        granted = setup_roles()
        for name, count in granted.items():
            self.stdout.write(f"group {name}: {count} permissions")
        for spec in user:
            username, _, role = spec.partition(":")
            if role not in ROLES:
                raise CommandError(f"unknown role {role!r}: use one of {sorted(ROLES)}")
            account = get_user_model().objects.filter(username=username).first()
            if account is None:
                raise CommandError(f"no user {username!r}")
            account.is_staff = True
            account.save(update_fields=["is_staff"])
            account.groups.add(Group.objects.get(name=role))
            self.stdout.write(f"user {username}: {role}")
