"""manage.py add_repository NAME --path DIR [--encrypt --passphrase-file FILE] [--gateway NAME]"""

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from repositories.models import GatewayServer
from repositories.services import RepositoryError, create_repository


class Command(BaseCommand):
    help = ("Add a repository: create its chunk store (or, on a gateway, record it) "
            "and a data mover token.")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--path", required=True,
                            help="the repository folder on the data mover's host")
        parser.add_argument("--encrypt", action="store_true",
                            help="encrypt chunks with a key derived from the passphrase")
        parser.add_argument("--passphrase-file", help="file whose first line is the passphrase")
        parser.add_argument("--gateway", help="name of the gateway server running the data mover")
        parser.add_argument("--url", default="", help="the data mover URL "
                            "(default http://127.0.0.1:8100, or http://GATEWAY:8100)")
        parser.add_argument("--kind", default="local", choices=["local", "nfs", "smb"])
        parser.add_argument("--capacity", type=int, help="bytes (default: the filesystem's size)")
        parser.add_argument("--immutable-days", type=int, default=0)
        parser.add_argument("--token-file", help="write the data mover token to this file (0600), "
                            "for a data mover started on another host")

    def handle(self, *args, name, path, encrypt, passphrase_file, gateway, url, kind, capacity,
               immutable_days, token_file, **options):
        passphrase = self._passphrase(encrypt, passphrase_file)
        gateway_server = None
        if gateway:
            gateway_server = GatewayServer.objects.filter(name=gateway).first()
            if gateway_server is None:
                raise CommandError(f"no gateway server named {gateway!r}: add it first "
                                   "on the Gateways page")
            if not token_file:
                raise CommandError("a repository on a gateway needs --token-file: its data "
                                   "mover reads the token from that file")
        token_out = self._open_token_file(token_file) if token_file else None
        self.stdout.write(f"Preparing repository {name} at {path}"
                          + (" (deriving the key, a second)" if passphrase else "") + "...")
        try:
            repository = create_repository(name, path, url=url, passphrase=passphrase,
                                           gateway=gateway_server, kind=kind, capacity=capacity,
                                           immutable_days=immutable_days)
        except RepositoryError as exc:
            if token_out is not None:
                token_out.close()
                os.unlink(token_file)  # nothing was added: leave no empty token file behind
            raise CommandError(str(exc)) from None
        if token_out is not None:
            with token_out:
                token_out.write(repository.token + "\n")
        self._summary(repository, token_file)

    def _open_token_file(self, token_file: str):
        """Opened before anything is made: a path that can't be written stops the command first."""
        try:
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise CommandError(f"can't write the token file {token_file}: {exc.strerror}") from None
        return os.fdopen(fd, "w")

    def _passphrase(self, encrypt: bool, passphrase_file: str | None) -> str | None:
        if not encrypt:
            if passphrase_file:
                raise CommandError("--passphrase-file is only used with --encrypt")
            return None
        if not passphrase_file:
            raise CommandError("--encrypt needs --passphrase-file FILE (the passphrase's first line)")
        try:
            lines = Path(passphrase_file).read_text().splitlines()
        except OSError as exc:
            raise CommandError(f"can't read {passphrase_file}: {exc.strerror}") from None
        if not lines or not lines[0]:
            raise CommandError(f"{passphrase_file} is empty: put the passphrase on its first line")
        return lines[0]

    def _summary(self, repository, token_file):
        self.stdout.write(self.style.SUCCESS(f"Added repository {repository.name}."))
        self.stdout.write(f"  path:       {repository.path}")
        self.stdout.write(f"  data mover: {repository.datamover_url}")
        self.stdout.write(f"  encrypted:  {'yes' if repository.encrypted else 'no'}")
        if repository.encrypted:
            self.stdout.write("  Keep the passphrase safe: without it no one can restore.")
        if repository.gateway:
            self.stdout.write(f"  On {repository.gateway.address}: {repository.gateway_command(token_file)}")
            if repository.encrypted:
                self.stdout.write("  (--encryption holds no secret: the key stays on the backup server.)")
        else:
            self.stdout.write(f"  Start its data mover: manage.py datamover {repository.name}")
