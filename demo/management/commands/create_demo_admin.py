"""python manage.py create_demo_admin — a superuser for the local demo, and its login."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create (or reset) the demo superuser and print the admin login."

    def handle(self, *args, **options):
        username = os.environ.get("KEYSTONE_DEMO_USER", "admin")
        password = os.environ.get("KEYSTONE_DEMO_PASSWORD", "keystone-demo")
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(
            f"Admin: http://127.0.0.1:8000/admin/  login: {username}  password: {password}"
        )
