"""Turn DATABASE_URL into Django's DATABASES entry (PostgreSQL or SQLite)."""

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from vbrsite.env import ConfigError

# A runner and the web write at the same time; SQLite must wait, not fail,
# and WAL lets readers go on while one writes.
SQLITE_INIT = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
SQLITE_TIMEOUT_SECONDS = 30


def sqlite_database(path: Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "timeout": SQLITE_TIMEOUT_SECONDS,
            "transaction_mode": "IMMEDIATE",
            "init_command": SQLITE_INIT,
        },
        "TEST": {"NAME": str(path.with_name(path.stem + "-test.sqlite3"))},
    }


def parse_database_url(url: str, data_dir: Path) -> dict:
    """DATABASES['default'] for a postgres:// or sqlite:// URL; empty means SQLite in data_dir."""
    if not url:
        return sqlite_database(data_dir / "vbr.sqlite3")
    parts = urlparse(url)
    if parts.scheme == "sqlite":
        # sqlite:////abs/path.sqlite3 is absolute, sqlite:///rel/path.sqlite3 relative.
        raw = unquote(parts.path)[1:]
        if not raw:
            raise ConfigError("DATABASE_URL sqlite:/// needs a file: sqlite:////path/to/file.sqlite3")
        return sqlite_database(Path(raw))
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise ConfigError(
        f"DATABASE_URL scheme {parts.scheme!r} is not supported: "
        "use postgres://user:password@host:5432/name or sqlite:////path/to/file.sqlite3"
    )
