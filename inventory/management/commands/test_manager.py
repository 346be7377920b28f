"""Test the connection to a registered manager."""

from django.core.management.base import BaseCommand, CommandError

from inventory.management.commands._common import get_manager
from inventory.models import Manager
from inventory.services import test_connection
from plugin.errors import EngineError


class Command(BaseCommand):
    help = "Log in to a manager's engine and show its product and version."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        manager = get_manager(name)
        try:
            info = test_connection(manager.credentials())
        except EngineError as exc:
            raise CommandError(f"{name}: {exc}") from None
        Manager.objects.filter(pk=manager.pk).update(product_name=info.product_name,
                                                     product_version=info.version)
        self.stdout.write(self.style.SUCCESS(f"{name}: connected to {info.product_name} {info.version}"))
