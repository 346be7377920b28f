"""Forms of the restore wizard: kind of restore, then the target and options of that kind."""

from __future__ import annotations

from django import forms

from inventory.queries import data_domains, placement_problem
from jobs.models import RestorePoint

ORIGINAL, NEW_LOCATION, DISKS = "original", "new", "disks"
KIND_CHOICES = (
    (ORIGINAL, "Entire VM to its original location"),
    (NEW_LOCATION, "Entire VM to a new location (another name, cluster, storage, networks)"),
    (DISKS, "Disks only: as new floating disks, or attached to an existing VM"),
)
UNPLUGGED = "-"
FORMAT_CHOICES = (("", "As each disk was"), ("cow", "QCOW2 (thin)"), ("raw", "Raw"))
ALLOCATION_CHOICES = (("", "As each disk was"), ("thin", "Thin provisioned"),
                      ("preallocated", "Preallocated (raw disks)"))


class DiskOptionsMixin(forms.Form):
    """Disk format and allocation: kept from the source unless chosen."""

    disk_format = forms.ChoiceField(choices=FORMAT_CHOICES, required=False, label="Disk format")
    allocation = forms.ChoiceField(choices=ALLOCATION_CHOICES, required=False)


class KindForm(forms.Form):
    """Step "kind": what to restore."""

    kind = forms.ChoiceField(choices=KIND_CHOICES, widget=forms.RadioSelect, initial=ORIGINAL)


class OriginalLocationForm(forms.Form):
    """Entire VM, original location: replace it, or keep the restored VM beside it."""

    replace = forms.BooleanField(
        required=False, label="Replace the original VM",
        help_text="Every disk is restored first; only then is the original VM stopped and replaced "
                  "(its name, MAC addresses and place are kept). Unticked: the restored VM is kept "
                  "beside the original under another name.")
    name = forms.CharField(required=False, max_length=255, label="Name beside the original",
                           help_text="Empty: <name>_restored when the original still exists.")
    power_on = forms.BooleanField(required=False, label="Power on after the restore")

    def clean(self):
        data = super().clean()
        if data.get("replace") and data.get("name"):
            self.add_error("name", "Replacing the original keeps its name: leave this empty.")
        return data


class NewLocationForm(DiskOptionsMixin):
    """Entire VM to a new location: name, cluster, storage, network mapping, MACs."""

    name = forms.CharField(max_length=255, help_text="The restored VM's name; it must be free.")
    cluster = forms.ModelChoiceField(queryset=None, empty_label=None)
    storage_domain = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Where each disk was", label="Storage domain",
        help_text="For every disk; choose per disk below to spread them.")
    new_macs = forms.BooleanField(required=False, initial=True, label="New MAC addresses",
                                  help_text="Needed when the original VM still runs on the same network.")
    power_on = forms.BooleanField(required=False, label="Power on after the restore")

    def __init__(self, *args, point: RestorePoint, manager, networks: list[str], **kwargs):
        from inventory.models import Cluster, Network

        super().__init__(*args, **kwargs)
        scope = {"manager": manager} if manager is not None else {}
        self.fields["cluster"].queryset = Cluster.objects.filter(removed=False, **scope)
        domains = data_domains(**scope)
        self.fields["storage_domain"].queryset = domains
        for disk in point.disks:
            self.fields[f"disk_sd_{disk['id']}"] = forms.ModelChoiceField(
                queryset=domains, required=False, empty_label="As above",
                label=f"Storage domain of {disk.get('name') or disk['id']}")
        names = sorted(set(Network.objects.filter(removed=False, **scope).values_list("name", flat=True)))
        choices = [(n, n) for n in names] + [(UNPLUGGED, "No network (NIC unplugged)")]
        for network in networks:
            self.fields[f"net_{network}"] = forms.ChoiceField(
                choices=choices, label=f"Network {network} maps to",
                initial=network if network in names else UNPLUGGED)
        self.networks = networks
        self.point, self.manager = point, manager
        self.order_fields(["name", "cluster", "storage_domain",
                           *[f"disk_sd_{d['id']}" for d in point.disks],
                           "disk_format", "allocation", *[f"net_{n}" for n in networks],
                           "new_macs", "power_on"])

    def clean(self):
        data = super().clean()
        cluster = data.get("cluster")
        if cluster is None or cluster.data_center is None:
            return data
        target, data_center = f"cluster {cluster.name}", cluster.data_center
        chosen = data.get("storage_domain")
        if problem := placement_problem(f"Storage domain {chosen} is", chosen, data_center, target):
            self.add_error("storage_domain", problem)
        sources = _source_domains(self.manager, [disk["id"] for disk in self.point.disks])
        for disk in self.point.disks:
            field = f"disk_sd_{disk['id']}"
            own, was = data.get(field), sources.get(disk["id"])
            if own is not None:
                problem = placement_problem(f"Storage domain {own} is", own, data_center, target)
            elif chosen is None:  # where the disk was
                problem = placement_problem(f"{disk.get('name') or disk['id']} was on storage domain "
                                            f"{was}, which is", was, data_center, target)
            else:
                continue  # the domain chosen for every disk, checked above
            if problem:
                self.add_error(field, problem)
        return data

    def disk_storage_domains(self) -> dict[str, str]:
        return {name.removeprefix("disk_sd_"): value.engine_id for name, value in self.cleaned_data.items()
                if name.startswith("disk_sd_") and value is not None}

    def network_mapping(self) -> dict[str, str]:
        return {name.removeprefix("net_"): "" if value == UNPLUGGED else value
                for name, value in self.cleaned_data.items() if name.startswith("net_")}


class DisksForm(DiskOptionsMixin):
    """Disks only: which, and floating on a storage domain or attached to a VM."""

    disks = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    storage_domain = forms.ModelChoiceField(queryset=None, required=False,
                                            empty_label="Where each disk was")
    vm = forms.ModelChoiceField(queryset=None, required=False, empty_label="None: floating disks",
                                label="Attach to VM")

    def __init__(self, *args, point: RestorePoint, manager, **kwargs):
        from inventory.models import VM

        super().__init__(*args, **kwargs)
        scope = {"manager": manager} if manager is not None else {}
        self.fields["disks"].choices = [
            (d["id"], f"{d.get('name') or d['id']} ({d.get('size', 0) / 2**30:.1f} GiB)") for d in point.disks]
        self.fields["storage_domain"].queryset = data_domains(**scope)
        self.fields["vm"].queryset = VM.objects.filter(removed=False, **scope)
        self.point, self.manager = point, manager

    def clean(self):
        data = super().clean()
        vm = data.get("vm")
        if vm is None or vm.cluster is None or vm.cluster.data_center is None:
            return data
        target, data_center = f"VM {vm.name} (cluster {vm.cluster.name})", vm.cluster.data_center
        chosen = data.get("storage_domain")
        if chosen is not None:
            if problem := placement_problem(f"Storage domain {chosen} is", chosen, data_center, target):
                self.add_error("storage_domain", problem)
            return data
        names = {disk["id"]: disk.get("name") or disk["id"] for disk in self.point.disks}
        sources = _source_domains(self.manager, data.get("disks") or [])
        for disk_id, was in sources.items():
            if problem := placement_problem(f"{names.get(disk_id, disk_id)} was on storage domain {was}, "
                                            "which is", was, data_center, target):
                self.add_error("storage_domain", problem)
        return data


def _source_domains(manager, disk_ids: list[str]) -> dict:
    """Source disk id → the storage domain the inventory last saw it on."""
    from inventory.models import Disk

    rows = Disk.objects.filter(engine_id__in=disk_ids, storage_domain__isnull=False,
                               storage_domain__removed=False).select_related("storage_domain")
    if manager is not None:
        rows = rows.filter(manager=manager)
    return {row.engine_id: row.storage_domain for row in rows}
