"""Register an oVirt engine as a manager (after testing the connection)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from inventory.management.commands._common import read_file
from inventory.models import Manager
from inventory.services import test_connection
from plugin.errors import EngineError


class Command(BaseCommand):
    help = "Register an oVirt engine: add_manager NAME --url URL --username USER --password-file FILE [--ca-file FILE]"

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--url", required=True, help="https://ENGINE/ovirt-engine/api")
        parser.add_argument("--username", required=True, help="e.g. admin@internal")
        parser.add_argument("--password-file", required=True,
                            help="a file holding the password (never give it on the command line)")
        parser.add_argument("--ca-file", help="the engine's CA certificate (PEM)")
        parser.add_argument("--update", action="store_true", help="change the manager if it exists")
        parser.add_argument("--skip-test", action="store_true",
                            help="save without testing the connection first")

    def handle(self, *args, name, url, username, password_file, ca_file, update, skip_test, **options):
        manager = Manager.objects.filter(name=name).first()
        if manager is not None and not update:
            raise CommandError(f"A manager named {name!r} exists already; add --update to change it.")
        manager = manager or Manager(name=name)
        manager.url, manager.username = url.rstrip("/"), username
        manager.password = read_file(password_file, "password").strip()
        if ca_file:
            manager.ca_certificate = read_file(ca_file, "CA certificate")
        try:
            manager.full_clean()
            manager.credentials().validate()
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        except EngineError as exc:
            raise CommandError(str(exc)) from None
        if not skip_test:
            try:
                info = test_connection(manager.credentials())
            except EngineError as exc:
                raise CommandError(f"Not saved: {exc}") from None
            manager.product_name, manager.product_version = info.product_name, info.version
            self.stdout.write(f"Connected to {info.product_name} {info.version}.")
        manager.save()
        self.stdout.write(self.style.SUCCESS(f"Saved manager {name}. Sync it with: manage.py sync_inventory {name}"))
