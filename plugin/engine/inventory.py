"""Reading what an engine manages: one list call per collection."""

from __future__ import annotations

from plugin.engine import convert
from plugin.engine.connection import Engine
from plugin.engine.records import (
    ApiInfo,
    ClusterInfo,
    DataCenterInfo,
    DiskInfo,
    HostInfo,
    Inventory,
    NetworkInfo,
    StorageDomainInfo,
    TemplateInfo,
    VmInfo,
    VnicProfileInfo,
)
from plugin.errors import EngineError, NotFound, translated

# Inlined in the VM list so one call gives each VM's tags, disks and NICs.
VM_FOLLOW = "tags,disk_attachments,nics"


@translated("reading the engine's product and version")
def api_info(engine: Engine) -> ApiInfo:
    """The engine's product name and version (e.g. "oVirt Engine", "4.5.6-1.el9")."""
    api = engine.sdk.system_service().get()
    product = api.product_info
    if product is None:
        raise EngineError("The engine answered without product information: is the URL an oVirt engine?")
    version = product.version
    text = ""
    if version is not None:
        text = version.full_version or ".".join(
            str(part) for part in (version.major, version.minor, version.build) if part is not None)
    return ApiInfo(product_name=product.name or "", version=text, vendor=product.vendor or "",
                   instance_id=product.instance_id or "")


@translated("listing data centers")
def list_data_centers(engine: Engine) -> list[DataCenterInfo]:
    """Every data center."""
    return [convert.data_center(dc) for dc in engine.sdk.system_service().data_centers_service().list()]


@translated("listing clusters")
def list_clusters(engine: Engine) -> list[ClusterInfo]:
    """Every cluster."""
    return [convert.cluster(c) for c in engine.sdk.system_service().clusters_service().list()]


@translated("listing hosts")
def list_hosts(engine: Engine) -> list[HostInfo]:
    """Every host."""
    return [convert.host(h) for h in engine.sdk.system_service().hosts_service().list()]


@translated("listing storage domains")
def list_storage_domains(engine: Engine) -> list[StorageDomainInfo]:
    """Every storage domain, with free and used space."""
    service = engine.sdk.system_service().storage_domains_service()
    return [convert.storage_domain(sd) for sd in service.list()]


@translated("listing networks")
def list_networks(engine: Engine) -> list[NetworkInfo]:
    """Every logical network."""
    return [convert.network(n) for n in engine.sdk.system_service().networks_service().list()]


@translated("listing vNIC profiles")
def list_vnic_profiles(engine: Engine) -> list[VnicProfileInfo]:
    """Every vNIC profile (for NIC mapping on restore and worker deployment)."""
    service = engine.sdk.system_service().vnic_profiles_service()
    return [convert.vnic_profile(p) for p in service.list()]


@translated("listing templates")
def list_templates(engine: Engine) -> list[TemplateInfo]:
    """Every VM template."""
    return [convert.template(t) for t in engine.sdk.system_service().templates_service().list()]


@translated("listing VMs")
def list_vms(engine: Engine, search: str | None = None) -> list[VmInfo]:
    """Every VM (or those matching the engine ``search``), with tags, disk attachments and NICs."""
    service = engine.sdk.system_service().vms_service()
    return [convert.vm(v) for v in service.list(search=search, follow=VM_FOLLOW)]


@translated("listing disks")
def list_disks(engine: Engine) -> list[DiskInfo]:
    """Every disk, attached or floating."""
    return [convert.disk(d) for d in engine.sdk.system_service().disks_service().list()]


def read_inventory(engine: Engine) -> Inventory:
    """Everything the engine manages, with one list call per collection."""
    return Inventory(
        data_centers=list_data_centers(engine), clusters=list_clusters(engine),
        hosts=list_hosts(engine), storage_domains=list_storage_domains(engine),
        networks=list_networks(engine), vms=list_vms(engine), disks=list_disks(engine),
    )


@translated("reading a VM")
def get_vm(engine: Engine, vm_id: str) -> VmInfo:
    """One VM by engine id, with tags, disk attachments and NICs; NotFound if it is gone."""
    service = engine.sdk.system_service().vms_service().vm_service(vm_id)
    return convert.vm(service.get(follow=VM_FOLLOW))


@translated("looking up a VM by name")
def find_vm(engine: Engine, name: str) -> VmInfo | None:
    """The VM with exactly this name, or None."""
    service = engine.sdk.system_service().vms_service()
    for vm in service.list(search=f'name="{name}"', follow=VM_FOLLOW):
        if vm.name == name:
            return convert.vm(vm)
    return None


@translated("reading a VM's OVF")
def get_vm_ovf(engine: Engine, vm_id: str) -> str:
    """The VM's full configuration as the engine's OVF document (kept in each restore point)."""
    service = engine.sdk.system_service().vms_service().vm_service(vm_id)
    vm = service.get(all_content=True)
    configuration = vm.initialization.configuration if vm.initialization is not None else None
    if configuration is None or not configuration.data:
        raise NotFound(f"The engine gave no OVF for VM {vm.name or vm_id}.")
    return configuration.data


@translated("reading a disk")
def get_disk(engine: Engine, disk_id: str) -> DiskInfo:
    """One disk by engine id; NotFound if it is gone."""
    return convert.disk(engine.sdk.system_service().disks_service().disk_service(disk_id).get())
