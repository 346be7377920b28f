"""System checks that reject a configuration the backup server can't run with."""

import os
import tempfile

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.compatibility, deploy=False)
def check_settings(app_configs, **kwargs):
    """vbrsite.E001: an environment variable has an unusable value."""
    return [
        Error(message, hint="Fix or unset the variable, then start again.", id="vbrsite.E001")
        for message in settings.SETTINGS_ERRORS
    ]


@register(Tags.compatibility)
def check_data_dir(app_configs, **kwargs):
    """vbrsite.E002: the data directory can't be created or written."""
    data_dir = settings.DATA_DIR
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        # A probe of its own: the web server, the runners and the data mover start
        # together and check the same folder (one shared name failed one of them).
        fd, probe = tempfile.mkstemp(dir=data_dir, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return [
            Error(
                f"The data directory {data_dir} is not writable: {exc.strerror}.",
                hint="Set VBR_DATA_DIR to a directory this user can write.",
                id="vbrsite.E002",
            )
        ]
    return []


@register(Tags.compatibility)
def check_production_database(app_configs, **kwargs):
    """vbrsite.E003: a Redis broker needs a shared database, not a local SQLite file."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if settings.REDIS_URL and engine.endswith("sqlite3"):
        return [
            Error(
                "VBR_REDIS_URL is set but the database is a local SQLite file: "
                "worker runners on other machines could not reach it.",
                hint="Set DATABASE_URL=postgres://user:password@host:5432/name, "
                "or unset VBR_REDIS_URL for the embedded stack.",
                id="vbrsite.E003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_debug(app_configs, **kwargs):
    """vbrsite.W001: DEBUG on in a deployment shows internals on error pages."""
    from django.core.checks import Warning

    if settings.DEBUG:
        return [Warning("VBR_DEBUG is on.", hint="Unset VBR_DEBUG in production.", id="vbrsite.W001")]
    return []
