"""System checks of the inventory's settings."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.compatibility)
def check_inventory_settings(app_configs, **kwargs):
    """inventory.E001: sync interval under a minute; inventory.E002: engine timeout under 5 s."""
    errors = []
    if settings.VBR_SYNC_INTERVAL_MINUTES < 1:
        errors.append(Error(
            f"VBR_SYNC_INTERVAL_MINUTES is {settings.VBR_SYNC_INTERVAL_MINUTES}: managers would never be synced.",
            hint="Set it to 1 or more minutes (default 15).", id="inventory.E001"))
    if settings.VBR_ENGINE_TIMEOUT < 5:
        errors.append(Error(
            f"VBR_ENGINE_TIMEOUT is {settings.VBR_ENGINE_TIMEOUT} s: engine calls would time out before answering.",
            hint="Set it to 5 seconds or more (default 60).", id="inventory.E002"))
    return errors
