from django.contrib import admin
from django.db import models

from repositories.models import GatewayServer, Repository


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    """Secrets (token, key) are never shown: they are excluded from every form."""

    list_display = ("name", "kind", "path", "gateway", "datamover_url", "encrypted",
                    "immutable_days")
    exclude = ("token", "key")
    formfield_overrides = {models.URLField: {"assume_scheme": "http"}}
    readonly_fields = ("encrypted", "key_check", "stats", "stats_updated", "last_verification",
                       "verified_at")


@admin.register(GatewayServer)
class GatewayServerAdmin(admin.ModelAdmin):
    list_display = ("name", "address", "state", "last_seen")
    readonly_fields = ("last_seen", "last_error")
