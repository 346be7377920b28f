"""Django admin for the inventory: synced fields read-only, the manager's password never shown."""

from django import forms
from django.contrib import admin

from inventory.forms import ManagerForm
from inventory.models import VM, Cluster, DataCenter, Disk, Host, Manager, Network, StorageDomain


class ManagerAdminForm(ManagerForm):
    """The page's manager form: the password is write-only and empty keeps the stored one."""

    class Meta(ManagerForm.Meta):
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 6})}


@admin.register(Manager)
class ManagerAdmin(admin.ModelAdmin):
    form = ManagerAdminForm
    list_display = ("name", "url", "username", "state", "last_sync", "product_version")
    list_filter = ("state",)
    search_fields = ("name", "url")
    readonly_fields = ("state", "last_error", "last_sync", "last_sync_seconds", "product_name",
                       "product_version", "sync_requested_at", "created")
    fields = ("name", "url", "username", "password", "ca_certificate") + readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The password is the form's own write-only field: keeping it out of the
        # model fields means the stored one is never decrypted to fill the form.
        fields = kwargs.pop("fields", None) or self.fields
        editable = [name for name in fields if name != "password" and name not in self.readonly_fields]
        return super().get_form(request, obj, change, fields=editable, **kwargs)



class SyncedAdmin(admin.ModelAdmin):
    """Rows copied from an engine: everything read-only (the next sync would overwrite it)."""

    list_filter = ("manager", "removed")
    search_fields = ("name", "engine_id")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(DataCenter)
class DataCenterAdmin(SyncedAdmin):
    list_display = ("name", "manager", "status", "removed")


@admin.register(Cluster)
class ClusterAdmin(SyncedAdmin):
    list_display = ("name", "manager", "data_center", "removed")


@admin.register(Host)
class HostAdmin(SyncedAdmin):
    list_display = ("name", "manager", "cluster", "address", "status", "removed")


@admin.register(StorageDomain)
class StorageDomainAdmin(SyncedAdmin):
    list_display = ("name", "manager", "type", "storage_type", "free", "used", "removed")


@admin.register(Network)
class NetworkAdmin(SyncedAdmin):
    list_display = ("name", "manager", "data_center", "vlan_id", "removed")


@admin.register(VM)
class VMAdmin(SyncedAdmin):
    list_display = ("name", "manager", "cluster", "status", "cpus", "memory", "removed")
    list_filter = ("manager", "removed", "status")


@admin.register(Disk)
class DiskAdmin(SyncedAdmin):
    list_display = ("name", "manager", "vm", "format", "provisioned_size", "storage_domain", "removed")
    list_filter = ("manager", "removed", "format")
