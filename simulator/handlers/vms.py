"""VMs: list, get (with the OVF on all_content), add from a template or an OVF, remove,
start/stop/shutdown, and their disk attachments, NICs and tags."""

from simulator import ovf
from simulator.engine import Engine, now
from simulator.errors import ApiError, bad_request, conflict
from simulator.handlers import vm_devices
from simulator.handlers.common import links, list_answer
from simulator.handlers.inventory import BLANK_TEMPLATE_ID
from simulator.routing import Request, Router, action_done, created, ok, removed
from simulator.store import new_id
from simulator.xmlio import Many, find_bool, find_id, find_int, find_text, href, ref

VM_LINKS = ("diskattachments", "nics", "snapshots", "tags", "backups", "checkpoints")


def vm_ovf(engine: Engine, vm: dict) -> str:
    """The OVF of a VM as the engine would export it."""
    disks = [(a, engine.store["disks"][a["disk"]]) for a in vm["disk_attachments"]
             if a["disk"] in engine.store["disks"]]
    networks = {}
    for nic in vm.get("nics", []):
        profile = engine.store["vnicprofiles"].get(nic.get("vnic_profile") or "")
        network = engine.store["networks"].get(profile["network"]) if profile else None
        networks[nic["id"]] = network["name"] if network else ""
    cluster = engine.store["clusters"].get(vm["cluster"], {}).get("name", "")
    return ovf.build(vm, disks, networks, cluster)


def followed(request_query: dict) -> set[str]:
    """The names in `follow=tags,disk_attachments.disk,nics`."""
    return {name.strip() for name in (request_query.get("follow") or "").split(",")
            if name.strip()}


def _inline(engine: Engine, vm: dict, follow: set[str]) -> dict:
    """The linked collections a client asked to follow, rendered inline as a real engine does."""
    from simulator.handlers.disks import render_disk

    inline: dict = {}
    if "tags" in follow:
        inline["tags"] = Many("tag", [
            vm_devices.render_vm_tag(engine, vm["id"], t) for t in vm.get("tags", [])
            if t in engine.store["tags"]])
    if follow & {"disk_attachments", "disk_attachments.disk"}:
        items = []
        for attachment in vm["disk_attachments"]:
            rendered = vm_devices.render_attachment(vm["id"], attachment)
            disk = engine.store["disks"].get(attachment["disk"])
            if "disk_attachments.disk" in follow and disk is not None:
                rendered["disk"] = render_disk(engine, disk)
            items.append(rendered)
        inline["disk_attachments"] = Many("disk_attachment", items)
    if "nics" in follow:
        inline["nics"] = Many("nic", [vm_devices.render_nic(vm["id"], n) for n in vm["nics"]])
    return inline


def render_vm(engine: Engine, vm: dict, all_content: bool = False,
              follow: set[str] = frozenset()) -> dict:
    """A VM as `<vm>`, with followed collections inline."""
    inline = _inline(engine, vm, follow) if follow else {}
    rels = [r for r in VM_LINKS if not (r == "diskattachments" and "disk_attachments" in inline)
            and r not in inline]
    cpu = vm["cpu"]
    return {**inline,
        "@href": href(f"vms/{vm['id']}"), "@id": vm["id"],
        "name": vm["name"], "description": vm.get("description", ""), "comment": "",
        "link": links(f"vms/{vm['id']}", *rels),
        "cpu": {"architecture": "x86_64", "topology": {
            "cores": cpu["cores"], "sockets": cpu["sockets"], "threads": cpu["threads"]}},
        "creation_time": vm["creation_time"], "delete_protected": False,
        "initialization": _render_initialization(engine, vm, all_content),
        "memory": vm["memory"],
        "memory_policy": {"guaranteed": vm["memory"], "max": vm["memory"] * 4},
        "origin": "ovirt",
        "os": {"boot": {"devices": Many("device", ["hd"])}, "type": vm["os"]},
        "start_time": vm.get("start_time"), "stateless": False, "status": vm["status"],
        "stop_time": vm.get("stop_time"), "type": "server",
        "cluster": ref("clusters", vm["cluster"]),
        "host": ref("hosts", vm["host"]) if vm.get("host") and vm["status"] == "up" else None,
        "original_template": ref("templates", vm.get("template") or BLANK_TEMPLATE_ID),
        "template": ref("templates", vm.get("template") or BLANK_TEMPLATE_ID),
    }


def _render_initialization(engine: Engine, vm: dict, all_content: bool) -> dict | None:
    """cloud-init settings as given, and the OVF (the configuration) with all_content."""
    values = dict(vm.get("initialization") or {})
    if all_content:
        values["configuration"] = {"data": vm_ovf(engine, vm), "type": "ovf"}
    return values or None


def vm_fields(engine: Engine):
    """Searchable fields of a VM."""
    def fields(vm: dict) -> dict:
        cluster = engine.store["clusters"].get(vm["cluster"], {})
        tags = [engine.store["tags"][t]["name"] for t in vm.get("tags", [])
                if t in engine.store["tags"]]
        return {"name": vm["name"], "id": vm["id"], "status": vm["status"],
                "cluster": cluster.get("name"), "description": vm.get("description", ""),
                "tag": tags[0] if tags else None}
    return fields


def new_vm(engine: Engine, name: str, cluster_id: str, **values) -> dict:
    """A VM record with defaults, stored in the model."""
    vm = {
        "id": values.pop("id", None) or new_id(), "name": name, "cluster": cluster_id,
        "description": "", "status": "down", "memory": 2**30, "os": "other_linux",
        "cpu": {"sockets": 1, "cores": 1, "threads": 1}, "template": BLANK_TEMPLATE_ID,
        "creation_time": now(), "nics": [], "disk_attachments": [], "tags": [],
    }
    vm.update(values)
    engine.store["vms"][vm["id"]] = vm
    return vm


def register(router: Router, engine: Engine) -> None:
    """Routes of VMs and their devices."""
    def list_vms(request: Request):
        with engine.lock:
            return list_answer(request, "vms", "vm", list(engine.store["vms"].values()),
                               lambda vm: render_vm(engine, vm, request.all_content,
                                                    followed(request.query)),
                               vm_fields(engine))

    def get_vm(request: Request):
        with engine.lock:
            vm = engine.get("vms", request.params["vm"], "VM")
            return ok("vm", render_vm(engine, vm, request.all_content, followed(request.query)))

    router.add("GET", "vms", list_vms)
    router.add("POST", "vms", lambda r: add_vm(engine, r))
    router.add("GET", "vms/{vm}", get_vm)
    router.add("PUT", "vms/{vm}", lambda r: update_vm(engine, r))
    router.add("DELETE", "vms/{vm}", lambda r: remove_vm(engine, r))
    for action in ("start", "stop", "shutdown", "reboot"):
        router.add("POST", f"vms/{{vm}}/{action}",
                   lambda r, action=action: power_action(engine, r, action))
    vm_devices.register(router, engine)


def _cluster_of(engine: Engine, body) -> str:
    cluster_id = find_id(body, "cluster")
    name = find_text(body, "cluster/name")
    for cluster in engine.store["clusters"].values():
        if cluster["id"] == cluster_id or (name and cluster["name"] == name):
            return cluster["id"]
    if cluster_id or name:
        raise bad_request(f"Cluster '{cluster_id or name}' doesn't exist.",
                          reason="Entity not found")
    raise bad_request("VM [cluster.id|name] required for add")


def _template_of(engine: Engine, body) -> dict:
    template_id = find_id(body, "template")
    name = find_text(body, "template/name")
    for template in engine.store["templates"].values():
        if template["id"] == template_id or (name and template["name"] == name):
            return template
    if template_id or name:
        raise bad_request(f"Template '{template_id or name}' doesn't exist.",
                          reason="Entity not found")
    return engine.store["templates"][BLANK_TEMPLATE_ID]


def add_vm(engine: Engine, request: Request):
    """POST /vms from a template (Blank by default) or from an OVF configuration."""
    body = request.xml()
    with engine.lock:
        cluster_id = _cluster_of(engine, body)
        configuration = body.find("initialization/configuration")
        if configuration is not None:
            vm = _vm_from_ovf(engine, body, configuration, cluster_id)
        else:
            name = find_text(body, "name")
            if not name:
                raise bad_request("VM [name] required for add")
            _check_name_free(engine, name)
            template = _template_of(engine, body)
            vm = new_vm(engine, name, cluster_id, template=template["id"],
                        memory=template.get("memory", 2**30))
        _apply_settings(vm, body)
        engine.add_event(f"VM {vm['name']} was created by admin@internal-authz.",
                         code=34, vm=vm["id"])
        engine.save()
        return created("vm", render_vm(engine, vm))


def _check_name_free(engine: Engine, name: str, exclude: str | None = None) -> None:
    if any(v["name"] == name and v["id"] != exclude for v in engine.store["vms"].values()):
        raise conflict("Cannot add VM. The VM name is already in use, please choose a unique "
                       "name and try again.")


def _apply_settings(vm: dict, body) -> None:
    """Copy what the request sets explicitly over the template's or OVF's values."""
    vm["description"] = find_text(body, "description", vm.get("description", ""))
    vm["memory"] = find_int(body, "memory", vm["memory"])
    vm["os"] = find_text(body, "os/type", vm["os"])
    pinned = find_id(body, "placement_policy/hosts/host")
    if pinned:
        vm["placement_host"] = pinned
    # Not stripped: a cloud-init script keeps its exact text.
    initialization = {k: body.findtext(f"initialization/{k}")
                      for k in ("host_name", "custom_script", "authorized_ssh_keys")}
    if any(initialization.values()):
        vm["initialization"] = {k: v for k, v in initialization.items() if v}
    topology = body.find("cpu/topology")
    if topology is not None:
        for key in ("sockets", "cores", "threads"):
            vm["cpu"][key] = find_int(topology, key, vm["cpu"][key])


def _vm_from_ovf(engine: Engine, body, configuration, cluster_id: str) -> dict:
    if (find_text(configuration, "type") or "ovf").lower() != "ovf":
        raise bad_request("Only configuration type 'ovf' is supported.")
    try:
        parsed = ovf.parse(find_text(configuration, "data") or "")
    except ovf.OvfError as error:
        raise bad_request(str(error), reason="Invalid OVF") from error
    name = find_text(body, "name") or parsed["name"]
    if not name:
        raise bad_request("VM [name] required for add")
    _check_name_free(engine, name)
    regenerate = find_bool(body, "initialization/regenerate_ids", False)
    vm_id = None if regenerate else parsed["id"]
    if vm_id and vm_id in engine.store["vms"]:
        raise conflict("Cannot add VM. VM with the same identifier already exists.")
    vm = new_vm(engine, name, cluster_id, id=vm_id, description=parsed["description"],
                memory=parsed["memory"] or 2**30, os=parsed["os"],
                cpu=parsed["cpu"] or {"sockets": 1, "cores": 1, "threads": 1})
    for nic in parsed["nics"]:
        vm_devices.add_nic_record(engine, vm, nic["name"], nic["mac"], nic["network"])
    for disk in parsed["disks"]:
        if disk["disk_id"] in engine.store["disks"] and not vm_devices.attached_vm(
                engine, disk["disk_id"]):
            vm["disk_attachments"].append({"disk": disk["disk_id"], "interface": disk["interface"],
                                           "bootable": disk["bootable"], "active": True})
    return vm


def update_vm(engine: Engine, request: Request):
    """PUT /vms/{id}: name, description, memory, CPU topology, OS."""
    body = request.xml()
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        name = find_text(body, "name")
        if name and name != vm["name"]:
            _check_name_free(engine, name, exclude=vm["id"])
            vm["name"] = name
        _apply_settings(vm, body)
        engine.save()
        return ok("vm", render_vm(engine, vm))


def remove_vm(engine: Engine, request: Request):
    """DELETE /vms/{id}: refused while it runs; its disks go too unless detach_only."""
    from simulator.handlers.disks import delete_disk_files

    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        if vm["status"] != "down":
            raise conflict("Cannot remove VM. VM is running.")
        from simulator.handlers.backups import active_backup

        if active_backup(engine, vm["id"]) is not None:
            raise conflict(f"Cannot remove VM. VM {vm['name']} is during a backup operation.")
        detach_only = request.query.get("detach_only", "false").lower() == "true"
        for attachment in vm["disk_attachments"]:
            disk = engine.store["disks"].get(attachment["disk"])
            if disk and disk["status"] == "locked":
                raise conflict(f"Cannot remove VM: Disk {disk['alias']} is locked. Please try "
                               "again in a few minutes.")
        if not detach_only:
            for attachment in vm["disk_attachments"]:
                disk = engine.store["disks"].pop(attachment["disk"], None)
                if disk:
                    delete_disk_files(engine, disk)
        for snapshot_id in [s["id"] for s in engine.store["snapshots"].values()
                            if s["vm"] == vm["id"]]:
            del engine.store["snapshots"][snapshot_id]
        del engine.store["vms"][vm["id"]]
        engine.add_event(f"VM {vm['name']} was successfully removed.", code=113)
        engine.save()
        return removed()


def _note_run_once(vm: dict, request: Request) -> None:
    """Keep the cloud-init payload a start gave for this run ("run once") in the state file only.

    oVirt doesn't store it with the VM, so the API never shows it; tests read it
    from the state, as a guest's cloud-init would have received it.
    """
    body = request.xml() if request.body else None
    script = body.findtext("vm/initialization/custom_script") if body is not None else None
    use_cloud_init = body is not None and find_bool(body, "use_cloud_init", False)
    vm["run_once"] = {"use_cloud_init": use_cloud_init, "custom_script": script or ""}


def power_action(engine: Engine, request: Request, action: str):
    """start, stop, shutdown and reboot, with oVirt's refusals."""
    with engine.lock:
        vm = engine.get("vms", request.params["vm"], "VM")
        if action == "start":
            if vm["status"] != "down":
                raise conflict("Cannot run VM. VM is running.")
            for attachment in vm["disk_attachments"]:
                disk = engine.store["disks"].get(attachment["disk"])
                if disk and disk["status"] != "ok":
                    raise conflict(f"Cannot run VM: Disk {disk['alias']} is locked. Please try "
                                   "again in a few minutes.")
            hosts = [h["id"] for h in engine.store["hosts"].values() if h["cluster"] == vm["cluster"]]
            if vm.get("placement_host") in hosts:
                hosts.insert(0, vm["placement_host"])
            if not hosts:
                raise conflict("Cannot run VM. There is no host that satisfies current "
                               "scheduling constraints.")
            vm["status"], vm["host"], vm["start_time"] = "powering_up", hosts[0], now()
            _note_run_once(vm, request)
            engine.later(_set_status, engine, vm["id"], "powering_up", "up")
            engine.add_event(f"VM {vm['name']} was started by admin@internal-authz.", code=153,
                             vm=vm["id"])
        elif action == "reboot":
            if vm["status"] != "up":
                raise conflict("Cannot reboot VM. VM is not running.")
            engine.add_event(f"VM {vm['name']} was restarted by admin@internal-authz.", code=157,
                             vm=vm["id"])
        else:
            if vm["status"] == "down":
                raise conflict(f"Cannot {action} VM. VM is not running.")
            vm["stop_time"] = now()
            if action == "stop":
                vm["status"] = "down"
            else:
                vm["status"] = "powering_down"
                engine.later(_set_status, engine, vm["id"], "powering_down", "down")
            engine.add_event(f"VM {vm['name']} is down.", code=61, vm=vm["id"])
        engine.save()
        return action_done()


def _set_status(engine: Engine, vm_id: str, expected: str, status: str) -> None:
    vm = engine.store["vms"].get(vm_id)
    if vm and vm["status"] == expected:
        vm["status"] = status


def ensure_vm_usable(engine: Engine, vm: dict) -> None:
    """Refuse operations on a VM that is between states."""
    if vm["status"] not in ("up", "down"):
        raise ApiError(409, "Operation Failed",
                       f"[Cannot perform this operation. VM {vm['name']} is {vm['status']}.]")
