"""Standalone data mover for gateway hosts without the backup server's database.

    python -m repositories.datamover --path /srv/repo --token-file /etc/vbr/token \
        [--key-file KEY] [--bind 0.0.0.0:8100] [--certfile C --keyfile K] [--init]
        [--encryption PARAMETERS]

``--encryption`` takes the line add_repository prints for an encrypted repository
on a gateway: with ``--init`` the repository is created encrypted; either way a
repository that isn't encrypted with that key is refused before serving.
"""

import argparse
from pathlib import Path

from repositories.datamover.app import DataMoverConfig
from repositories.datamover.server import (
    DEFAULT_BIND,
    add_verify_content_argument,
    main_error,
    serve,
)
from repositories.store import ChunkStore, EncryptionParameters, RepositoryKey, StoreError


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m repositories.datamover",
                                     description="Serve one repository's chunk store over HTTP.")
    parser.add_argument("--path", required=True, help="the repository folder")
    parser.add_argument("--token-file", required=True, help="file holding the bearer token")
    parser.add_argument("--key-file", help="file holding the repository key (base64); "
                        "lets the data mover check encrypted chunks' content")
    parser.add_argument("--bind", default=DEFAULT_BIND)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--immutable-days", type=int, default=0)
    parser.add_argument("--capacity", type=int, help="bytes to report as capacity")
    parser.add_argument("--init", action="store_true",
                        help="create the repository at --path if there is none (encrypted with "
                             "--encryption, else unencrypted)")
    parser.add_argument("--encryption", metavar="PARAMETERS",
                        help="the encryption parameters add_repository printed (vbr-encryption-1:...; "
                             "no secret in them): the repository must be encrypted with that key")
    parser.add_argument("--access-log", action="store_true")
    add_verify_content_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        token = Path(args.token_file).read_text().strip()
        key = RepositoryKey.from_text(Path(args.key_file).read_text().strip()) if args.key_file else None
        if not token:
            raise StoreError(f"{args.token_file} is empty: put the repository's token in it")
        encryption = EncryptionParameters.from_text(args.encryption) if args.encryption else None
        if args.init:
            ChunkStore.create(args.path, encryption=encryption)
        elif encryption is not None:
            ChunkStore.open(args.path).check_encryption(encryption)
        config = DataMoverConfig(path=args.path, token=token, key=key,
                                 immutable_days=args.immutable_days, capacity=args.capacity,
                                 verify_content=args.verify_content)
        serve(config, args.bind, workers=args.workers, threads=args.threads,
              certfile=args.certfile, keyfile=args.keyfile, access_log=args.access_log)
    except (OSError, StoreError) as exc:
        main_error(str(exc))


if __name__ == "__main__":
    main()
