"""A VM's disk attachments, NICs and tags."""

from simulator.engine import Engine
from simulator.errors import bad_request, conflict, not_found
from simulator.handlers.common import list_answer
from simulator.routing import Request, Router, created, ok, removed
from simulator.store import new_id
from simulator.xmlio import find_bool, find_id, find_text, href, ref

MAC_PREFIX = "56:6f:1a"


def render_attachment(vm_id: str, attachment: dict) -> dict:
    """A disk attachment as `<disk_attachment>` (its id is the disk's id, as in oVirt)."""
    return {
        "@href": href(f"vms/{vm_id}/diskattachments/{attachment['disk']}"),
        "@id": attachment["disk"],
        "active": attachment.get("active", True), "bootable": attachment.get("bootable", False),
        "interface": attachment.get("interface", "virtio_scsi"), "pass_discard": False,
        "read_only": False, "uses_scsi_reservation": False,
        "disk": ref("disks", attachment["disk"]), "vm": ref("vms", vm_id),
    }


def render_nic(vm_id: str, nic: dict) -> dict:
    """A NIC as `<nic>`."""
    return {
        "@href": href(f"vms/{vm_id}/nics/{nic['id']}"), "@id": nic["id"],
        "name": nic["name"], "interface": nic.get("interface", "virtio"), "linked": True,
        "mac": {"address": nic["mac"]}, "plugged": True,
        "vnic_profile": ref("vnicprofiles", nic["vnic_profile"]) if nic.get("vnic_profile")
        else None,
        "vm": ref("vms", vm_id),
    }


def attached_vm(engine: Engine, disk_id: str) -> dict | None:
    """The VM a disk is attached to, if any."""
    for vm in engine.store["vms"].values():
        if any(a["disk"] == disk_id for a in vm["disk_attachments"]):
            return vm
    return None


def next_mac(engine: Engine) -> str:
    """A MAC address from the engine's pool, never handed out twice."""
    used = {n["mac"] for vm in engine.store["vms"].values() for n in vm.get("nics", [])}
    while True:
        seq = engine.store.meta.get("mac_seq", 0) + 1
        engine.store.meta["mac_seq"] = seq
        mac = f"{MAC_PREFIX}:{(seq >> 16) & 255:02x}:{(seq >> 8) & 255:02x}:{seq & 255:02x}"
        if mac not in used:
            return mac


def data_center_of(engine: Engine, vm: dict) -> str | None:
    """The data center of the VM's cluster."""
    return engine.store["clusters"].get(vm["cluster"], {}).get("data_center")


def profile_for_network(engine: Engine, vm: dict, network_name: str) -> str | None:
    """The first vNIC profile of the network with that name in the VM's data center.

    Every data center has networks of its own (an ovirtmgmt in each), and the engine
    looks a NIC's network up among those of the VM's cluster.
    """
    data_center = data_center_of(engine, vm)
    for profile in engine.store["vnicprofiles"].values():
        network = engine.store["networks"].get(profile["network"], {})
        if network.get("name") == network_name and network.get("data_center") == data_center:
            return profile["id"]
    return None


def add_nic_record(engine: Engine, vm: dict, name: str, mac: str | None, network: str) -> dict:
    """Add a NIC to a VM; a MAC already used by another VM is replaced from the pool."""
    used = {n["mac"] for other in engine.store["vms"].values() for n in other.get("nics", [])}
    nic = {"id": new_id(), "name": name, "interface": "virtio",
           "mac": mac if mac and mac not in used else next_mac(engine),
           "vnic_profile": profile_for_network(engine, vm, network)}
    vm["nics"].append(nic)
    return nic


def register(router: Router, engine: Engine) -> None:
    """Routes of disk attachments, NICs and VM tags."""
    router.add("GET", "vms/{vm}/diskattachments", lambda r: list_attachments(engine, r))
    router.add("POST", "vms/{vm}/diskattachments", lambda r: add_attachment(engine, r))
    router.add("GET", "vms/{vm}/diskattachments/{disk}", lambda r: get_attachment(engine, r))
    router.add("DELETE", "vms/{vm}/diskattachments/{disk}",
               lambda r: remove_attachment(engine, r))
    router.add("GET", "vms/{vm}/nics", lambda r: list_nics(engine, r))
    router.add("POST", "vms/{vm}/nics", lambda r: add_nic(engine, r))
    router.add("GET", "vms/{vm}/nics/{nic}", lambda r: get_nic(engine, r))
    router.add("DELETE", "vms/{vm}/nics/{nic}", lambda r: remove_nic(engine, r))
    router.add("GET", "vms/{vm}/tags", lambda r: list_vm_tags(engine, r))
    router.add("POST", "vms/{vm}/tags", lambda r: add_vm_tag(engine, r))
    router.add("DELETE", "vms/{vm}/tags/{tag}", lambda r: remove_vm_tag(engine, r))


def list_attachments(engine: Engine, request: Request):
    """GET /vms/{id}/diskattachments."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        return list_answer(request, "disk_attachments", "disk_attachment",
                           vm["disk_attachments"], lambda a: render_attachment(vm["id"], a))


def _attachment(vm: dict, disk_id: str) -> dict:
    for attachment in vm["disk_attachments"]:
        if attachment["disk"] == disk_id:
            return attachment
    raise not_found("disk attachment")


def get_attachment(engine: Engine, request: Request):
    """GET /vms/{id}/diskattachments/{disk}."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        return ok("disk_attachment", render_attachment(vm["id"], _attachment(
            vm, request.params["disk"])))


def add_attachment(engine: Engine, request: Request):
    """POST /vms/{id}/diskattachments: attach an existing disk, or create one inline."""
    from simulator.handlers.disks import create_disk

    body = request.xml()
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        disk_id = find_id(body, "disk")
        if disk_id is None:
            disk_element = body.find("disk")
            if disk_element is None:
                raise bad_request("DiskAttachment [disk.id] required for add")
            disk_id = create_disk(engine, disk_element)["id"]
        disk = engine.get("disks", disk_id, "disk")
        owner = attached_vm(engine, disk_id)
        if owner is not None:
            raise conflict("Cannot attach Virtual Disk. The disk is already attached to VM "
                           f"{owner['name']}.")
        interface = find_text(body, "interface")
        if not interface:
            raise bad_request("DiskAttachment [interface] required for add")
        attachment = {"disk": disk["id"], "interface": interface,
                      "bootable": find_bool(body, "bootable", False),
                      "active": find_bool(body, "active", True)}
        _refuse_what_ovirt_cannot_attach(engine, vm, disk, attachment)
        vm["disk_attachments"].append(attachment)
        engine.add_event(f"Disk {disk['alias']} was successfully attached to VM {vm['name']} by "
                         "admin@internal-authz.", code=2016, vm=vm["id"])
        engine.save()
        return created("disk_attachment", render_attachment(vm["id"], attachment))


# The disk interfaces oVirt hot plugs, whatever the architecture: osinfo's hotpluggableInterfaces
# (ppc64 lists SPAPR_VSCSI too, but the attach command refuses it and IDE before reading the list).
HOT_PLUGGABLE = ("virtio", "virtio_scsi")
NAMED_REFUSALS = {"ide": "an IDE", "spapr_vscsi": "a sPAPR VSCSI"}


def _refuse_what_ovirt_cannot_attach(engine: Engine, vm: dict, disk: dict, attachment: dict) -> None:
    """409, as oVirt answers: a VM neither up, paused nor down; a disk whose storage domain is
    not in the VM's data center; a disk plugged into a running VM on an interface oVirt
    doesn't hot plug (attached inactive, it goes)."""
    if vm["status"] not in ("up", "paused", "down"):
        raise conflict(f"Cannot attach Virtual Disk. VM {vm['name']} is {vm['status']}: disks are "
                       "attached only to VMs that are up, paused or down.")
    domain = engine.store["storagedomains"].get(disk["storage_domain"], {})
    if domain.get("data_center") != data_center_of(engine, vm):
        raise conflict("Cannot attach Virtual Disk. The target Data Center does not contain the "
                       "Virtual Disk.")
    interface = attachment["interface"]
    if not attachment["active"] or vm["status"] == "down" or interface in HOT_PLUGGABLE:
        return
    if interface in NAMED_REFUSALS:
        raise conflict(f"Cannot attach {disk['alias']} to {vm['name']}. Hot plugging a disk to "
                       f"{NAMED_REFUSALS[interface]} interface is not supported.")
    raise conflict(f"Cannot attach Virtual Disk. The disk interface is not supported by the VM OS: "
                   f"{vm.get('os') or 'other'}.")


def remove_attachment(engine: Engine, request: Request):
    """DELETE /vms/{id}/diskattachments/{disk}: detach (and remove with detach_only=false)."""
    from simulator.handlers.disks import delete_disk_files

    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        attachment = _attachment(vm, request.params["disk"])
        disk = engine.store["disks"].get(attachment["disk"])
        if disk and disk["status"] == "locked":
            raise conflict(f"Cannot detach Virtual Disk. Disk {disk['alias']} is locked. "
                           "Please try again in a few minutes.")
        vm["disk_attachments"].remove(attachment)
        if request.query.get("detach_only", "true").lower() == "false" and disk:
            del engine.store["disks"][disk["id"]]
            delete_disk_files(engine, disk)
        engine.save()
        return removed()


def list_nics(engine: Engine, request: Request):
    """GET /vms/{id}/nics."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        return list_answer(request, "nics", "nic", vm["nics"], lambda n: render_nic(vm["id"], n))


def _nic(vm: dict, nic_id: str) -> dict:
    for nic in vm["nics"]:
        if nic["id"] == nic_id:
            return nic
    raise not_found("NIC")


def get_nic(engine: Engine, request: Request):
    """GET /vms/{id}/nics/{nic}."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        return ok("nic", render_nic(vm["id"], _nic(vm, request.params["nic"])))


def add_nic(engine: Engine, request: Request):
    """POST /vms/{id}/nics with a name, optional MAC and vNIC profile."""
    body = request.xml()
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        name = find_text(body, "name")
        if not name:
            raise bad_request("NIC [name] required for add")
        if any(n["name"] == name for n in vm["nics"]):
            raise conflict("Cannot add Interface. The VM Network Interface name is already in "
                           "use.")
        mac = find_text(body, "mac/address")
        used = {n["mac"] for other in engine.store["vms"].values() for n in other["nics"]}
        if mac and mac in used:
            raise conflict("Cannot add Interface. MAC Address is already in use.")
        profile_id = find_id(body, "vnic_profile")
        if profile_id:
            profile = engine.get("vnicprofiles", profile_id, "vNIC profile")
            _refuse_profile_of_another_data_center(engine, vm, profile)
        nic = {"id": new_id(), "name": name, "interface": find_text(body, "interface", "virtio"),
               "mac": mac or next_mac(engine), "vnic_profile": profile_id}
        vm["nics"].append(nic)
        engine.save()
        return created("nic", render_nic(vm["id"], nic))


def _refuse_profile_of_another_data_center(engine: Engine, vm: dict, profile: dict) -> None:
    """409, as oVirt answers a NIC whose vNIC profile is on a network outside the VM's cluster
    (here: of another data center, since a data center's networks are in all its clusters)."""
    network = engine.store["networks"].get(profile["network"], {})
    if network.get("data_center") != data_center_of(engine, vm):
        raise conflict("The specified Logical Network doesn't exist in the current Cluster.")


def remove_nic(engine: Engine, request: Request):
    """DELETE /vms/{id}/nics/{nic}."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        vm["nics"].remove(_nic(vm, request.params["nic"]))
        engine.save()
        return removed()


def render_vm_tag(engine: Engine, vm_id: str, tag_id: str) -> dict:
    """A VM's tag as `<tag>`."""
    tag = engine.store["tags"][tag_id]
    return {"@href": href(f"vms/{vm_id}/tags/{tag_id}"), "@id": tag_id, "name": tag["name"],
            "description": tag.get("description", ""), "vm": ref("vms", vm_id)}


def list_vm_tags(engine: Engine, request: Request):
    """GET /vms/{id}/tags."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        tags = [t for t in vm["tags"] if t in engine.store["tags"]]
        return list_answer(request, "tags", "tag", [{"id": t} for t in tags],
                           lambda t: render_vm_tag(engine, vm["id"], t["id"]))


def add_vm_tag(engine: Engine, request: Request):
    """POST /vms/{id}/tags: by tag id or name."""
    body = request.xml()
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        tag_id, name = find_id(body, "."), find_text(body, "name")
        tag = next((t for t in engine.store["tags"].values()
                    if t["id"] == tag_id or (name and t["name"] == name)), None)
        if tag is None:
            raise bad_request(f"Tag '{tag_id or name}' doesn't exist.", reason="Entity not found")
        if tag["id"] not in vm["tags"]:
            vm["tags"].append(tag["id"])
        engine.save()
        return created("tag", render_vm_tag(engine, vm["id"], tag["id"]))


def remove_vm_tag(engine: Engine, request: Request):
    """DELETE /vms/{id}/tags/{tag}."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        if request.params["tag"] not in vm["tags"]:
            raise not_found("tag")
        vm["tags"].remove(request.params["tag"])
        engine.save()
        return removed()
