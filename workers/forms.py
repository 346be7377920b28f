"""Forms of the workers pages (the deploy_worker command validates through them too)."""

from django import forms
from django.conf import settings

from inventory.models import Cluster, Host
from inventory.queries import data_domains, placement_problem
from workers.choices import Launcher
from workers.models import Worker


class WorkerForm(forms.ModelForm):
    """Where and how big a new worker VM is; its manager is the cluster's."""

    class Meta:
        model = Worker
        fields = ["name", "cluster", "preferred_host", "cpus", "memory", "vnic_profile",
                  "storage_domain", "max_tasks", "template"]
        labels = {"vnic_profile": "Network (vNIC profile)"}
        help_texts = {"vnic_profile": "The vNIC profile's name or engine id, or a network's name, in the "
                                      "cluster's data center; empty: no NIC."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cluster"].queryset = (Cluster.objects.filter(removed=False)
                                           .select_related("manager").order_by("manager__name", "name"))
        self.fields["cluster"].label_from_instance = lambda c: f"{c.manager.name} / {c.name}"
        self.fields["preferred_host"].queryset = Host.objects.filter(removed=False).order_by("name")
        self.fields["storage_domain"].queryset = data_domains().order_by("name")

    def clean(self):
        data = super().clean()
        cluster, host = data.get("cluster"), data.get("preferred_host")
        if cluster and host and host.cluster_id != cluster.pk:
            self.add_error("preferred_host", f"Host {host.name} is not in cluster {cluster.name}.")
        domain = data.get("storage_domain")
        if cluster and domain and (problem := _domain_problem(cluster, domain)):
            self.add_error("storage_domain", problem)
        cloud_init = settings.VBR_WORKER_LAUNCHER == Launcher.CLOUD_INIT
        if cloud_init and cluster and not domain and data.get("template", "Blank") == "Blank":
            self.add_error("storage_domain", "A worker created from Blank needs a storage domain "
                                             "for its boot disk (or name a template).")
        return data

    def save(self, commit: bool = True) -> Worker:
        worker = super().save(commit=False)
        worker.manager = worker.cluster.manager
        if commit:
            worker.save()
        return worker


def _domain_problem(cluster: Cluster, domain) -> str | None:
    """Why the worker's boot disk can't go on ``domain``: the engine would refuse it only when
    attaching it to the VM, after the VM and the disk were made."""
    if domain.manager_id != cluster.manager_id:
        return f"Storage domain {domain.name} belongs to another manager."
    if cluster.data_center is None:
        return None  # unknown here: deployment checks it against the engine first
    return placement_problem(f"Storage domain {domain.name} is", domain, cluster.data_center,
                             f"cluster {cluster.name}")


class ConfirmForm(forms.Form):
    """A checkbox that says the administrator means it (stop, redeploy, remove)."""

    confirm = forms.BooleanField(required=True, label="Yes, I mean it")
    force = forms.BooleanField(required=False,
                               label="Even if it is moving disks (their sessions fail them)")
