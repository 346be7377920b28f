"""manage.py datamover NAME [--bind HOST:PORT]: serve a repository's data mover under gunicorn."""

import dataclasses

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from repositories.datamover.server import add_verify_content_argument, serve
from repositories.models import Repository
from repositories.setup import DEFAULT_NAME, ensure_default_repository
from repositories.store import StoreError


class Command(BaseCommand):
    help = ("Run the data mover of a repository (until stopped). The repository "
            "\"default\" is created under VBR_DATA_DIR if it doesn't exist.")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--bind", help="HOST:PORT (default: from the repository's data mover URL)")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--threads", type=int, default=8)
        parser.add_argument("--certfile", help="TLS certificate (PEM)")
        parser.add_argument("--keyfile", help="TLS private key (PEM)")
        parser.add_argument("--access-log", action="store_true")
        add_verify_content_argument(parser)

    def handle(self, *args, name, bind, workers, threads, certfile, keyfile, access_log,
               verify_content=False, **options):
        repository = Repository.objects.filter(name=name).first()
        if repository is None and name == DEFAULT_NAME:
            # make run starts this before anyone added a repository: create it.
            repository = ensure_default_repository()
        if repository is None:
            names = ", ".join(Repository.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"no repository named {name!r} (repositories: {names})")
        if repository.datamover_url.startswith("https:") and not certfile:
            raise CommandError(f"{repository.datamover_url} is https: give --certfile and --keyfile")
        config = dataclasses.replace(repository.datamover_config(), verify_content=verify_content)
        bind = bind or repository.datamover_bind()
        # gunicorn forks: no database connection may cross into the workers.
        connections.close_all()
        self.stdout.write(f"Data mover of {name} ({repository.path}) on {bind}", ending="\n")
        self.stdout.flush()
        try:
            serve(config, bind, workers=workers, threads=threads, certfile=certfile,
                  keyfile=keyfile, access_log=access_log)
        except StoreError as exc:
            raise CommandError(f"{name}: {exc}") from None
