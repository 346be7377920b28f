"""Prepare a new installation: the first administrator (printed once), the default
repository and the periodic schedules. Idempotent: `make run` runs it at every start."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from vbrsite.demo import prepare_installation
from vbrsite.roles import ADMINISTRATOR


class Command(BaseCommand):
    help = ("Create the first administrator (password from VBR_ADMIN_PASSWORD or generated and "
            "printed once), the default repository and the periodic schedules.")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        self._administrator(username)
        prepare_installation(self.stdout.write)

    def _administrator(self, username: str) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An administrator exists already; log in with its password.")
            return
        password = settings.ADMIN_PASSWORD or secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email="", password=password)
        user.groups.add(Group.objects.get_or_create(name=ADMINISTRATOR)[0])
        self.stdout.write(self.style.SUCCESS("Created the administrator."))
        self.stdout.write(f"  user:     {username}")
        if settings.ADMIN_PASSWORD:
            self.stdout.write("  password: the value of VBR_ADMIN_PASSWORD")
        else:
            self.stdout.write(f"  password: {password}")
            self.stdout.write("  (shown only this once: keep it, or change it with "
                              "`manage.py changepassword admin`)")
