"""System checks of the repositories app."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.compatibility)
def check_default_datamover_url(app_configs, **kwargs):
    """repositories.E001: the default repository's data mover URL can't be used."""
    url = settings.DEFAULT_DATAMOVER_URL
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme in ("http", "https") and parts.hostname and port:
        return []
    return [Error(f"VBR_DEFAULT_DATAMOVER_URL={url!r} is not a data mover URL.",
                  hint="Use http://HOST:PORT, e.g. http://127.0.0.1:8100.",
                  id="repositories.E001")]
