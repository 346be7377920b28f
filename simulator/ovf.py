"""The OVF of a VM as the engine gives it with all_content=true, and reading one back.

The layout follows oVirt's OVF (ovf:Envelope with References, DiskSection and a VirtualSystem
whose hardware section lists CPU, memory, disks and NICs as rasd Items); only what restores use
is read back: name, description, memory, CPU topology, OS, NICs and disk ids.
"""

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

OVF_NS = "http://schemas.dmtf.org/ovf/envelope/1/"
RASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"ovf": OVF_NS, "rasd": RASD_NS, "xsi": XSI_NS}


def _item(fields: dict, extra: str = "") -> str:
    body = "".join(f"<rasd:{k}>{escape(str(v))}</rasd:{k}>" for k, v in fields.items())
    return f"<Item>{body}{extra}</Item>"


def build(vm: dict, disks: list[tuple[dict, dict]], networks: dict[str, str], cluster: str) -> str:
    """The OVF text of a VM; disks are (attachment, disk) pairs, networks nic id -> name."""
    refs, disk_section, items = [], [], []
    cpu = vm["cpu"]
    items.append(_item({
        "Caption": f"{cpu['sockets'] * cpu['cores'] * cpu['threads']} virtual cpu",
        "Description": "Number of virtual CPU", "InstanceId": 1, "ResourceType": 3,
        "num_of_sockets": cpu["sockets"], "cpu_per_socket": cpu["cores"],
        "threads_per_cpu": cpu["threads"]}))
    memory_mb = vm["memory"] // 2**20
    items.append(_item({"Caption": f"{memory_mb} MB of memory", "Description": "Memory Size",
                        "InstanceId": 2, "ResourceType": 4, "AllocationUnits": "MegaBytes",
                        "VirtualQuantity": memory_mb}))
    for attachment, disk in disks:
        volume = disk["volumes"][-1]["id"]
        file_ref = f"{disk['id']}/{volume}"
        gib = max(1, disk["provisioned_size"] // 2**30)
        refs.append(f'<File ovf:href={quoteattr(file_ref)} ovf:id={quoteattr(volume)} '
                    f'ovf:size="{disk["provisioned_size"]}" ovf:description={quoteattr(disk["alias"])} '
                    f'ovf:disk_storage_type="IMAGE" ovf:cinder_volume_type=""/>')
        disk_section.append(
            f'<Disk ovf:diskId={quoteattr(volume)} ovf:size="{gib}" ovf:actual_size="{gib}" '
            f'ovf:fileRef={quoteattr(file_ref)} ovf:parentRef="" '
            f'ovf:volume-format="{disk["volumes"][-1]["format"].upper()}" '
            f'ovf:volume-type="{"Sparse" if disk.get("sparse", True) else "Preallocated"}" '
            f'ovf:disk-interface="{_interface_name(attachment["interface"])}" '
            f'ovf:boot="{str(attachment.get("bootable", False)).lower()}" '
            f'ovf:disk-alias={quoteattr(disk["alias"])} ovf:disk-description="" '
            f'ovf:wipe-after-delete="false"/>')
        items.append(_item({"Caption": disk["alias"], "InstanceId": volume, "ResourceType": 17,
                            "HostResource": file_ref, "StorageId": disk["storage_domain"]},
                           "<Type>disk</Type><Device>disk</Device><IsPlugged>true</IsPlugged>"
                           f"<BootOrder>{1 if attachment.get('bootable') else 0}</BootOrder>"))
    for nic in vm.get("nics", []):
        network = networks.get(nic["id"], "")
        items.append(_item({"Caption": f"Ethernet adapter on {network}", "InstanceId": nic["id"],
                            "ResourceType": 10, "OtherResourceType": network,
                            "ResourceSubType": 3, "Connection": network, "Linked": "true",
                            "Name": nic["name"], "ElementName": nic["name"],
                            "MACAddress": nic["mac"], "speed": 10000},
                           "<Type>interface</Type><Device>bridge</Device>"
                           "<IsPlugged>true</IsPlugged>"))
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f'<ovf:Envelope xmlns:ovf="{OVF_NS}" xmlns:rasd="{RASD_NS}" xmlns:xsi="{XSI_NS}" '
        'ovf:version="4.4.0.0">'
        f"<References>{''.join(refs)}</References>"
        '<Section xsi:type="ovf:DiskSection_Type"><Info>List of Virtual Disks</Info>'
        f"{''.join(disk_section)}</Section>"
        '<Content ovf:id="out" xsi:type="ovf:VirtualSystem_Type">'
        f"<Name>{escape(vm['name'])}</Name><Description>{escape(vm.get('description', ''))}"
        f"</Description><ClusterName>{escape(cluster)}</ClusterName>"
        f"<TemplateId>{vm.get('template', '')}</TemplateId>"
        f'<Section ovf:id="{vm["id"]}" ovf:required="false" '
        'xsi:type="ovf:OperatingSystemSection_Type"><Info>Guest Operating System</Info>'
        f"<Description>{escape(vm['os'])}</Description></Section>"
        '<Section xsi:type="ovf:VirtualHardwareSection_Type">'
        f"<Info>{cpu['sockets'] * cpu['cores']} CPU, {memory_mb} Memory</Info>"
        f"{''.join(items)}</Section></Content></ovf:Envelope>"
    )


def _interface_name(interface: str) -> str:
    return {"virtio_scsi": "VirtIO_SCSI", "virtio": "VirtIO", "ide": "IDE",
            "sata": "SATA"}.get(interface, interface)


class OvfError(ValueError):
    """The OVF text can't be read."""


def parse(text: str) -> dict:
    """What a restore needs from an OVF: name, description, memory, cpu, os, id, nics, disks."""
    try:
        root = ET.fromstring(text.encode() if isinstance(text, str) else text)
    except ET.ParseError as error:
        raise OvfError(f"The OVF isn't well-formed XML: {error}") from error
    content = root.find("Content")
    if content is None:
        raise OvfError("The OVF has no Content (VirtualSystem) section.")
    result = {"name": content.findtext("Name"), "description": content.findtext("Description") or "",
              "memory": None, "cpu": None, "os": "other", "id": None, "nics": [], "disks": []}
    for section in content.findall("Section"):
        kind = section.get(f"{{{XSI_NS}}}type", "")
        if kind.endswith("OperatingSystemSection_Type"):
            result["id"] = section.get(f"{{{OVF_NS}}}id")
            result["os"] = section.findtext("Description") or "other"
        elif kind.endswith("VirtualHardwareSection_Type"):
            for item in section.findall("Item"):
                _read_item(item, result)
    boot = {d.get(f"{{{OVF_NS}}}diskId"): d for d in root.iter("Disk")}
    for disk in result["disks"]:
        entry = boot.get(disk["volume_id"])
        if entry is not None:
            disk["bootable"] = entry.get(f"{{{OVF_NS}}}boot") == "true"
            disk["interface"] = {v: k for k, v in {
                "virtio_scsi": "VirtIO_SCSI", "virtio": "VirtIO", "ide": "IDE", "sata": "SATA",
            }.items()}.get(entry.get(f"{{{OVF_NS}}}disk-interface"), "virtio_scsi")
    return result


def _read_item(item: ET.Element, result: dict) -> None:
    def rasd(name: str) -> str | None:
        return item.findtext(f"rasd:{name}", namespaces=NS)

    resource = rasd("ResourceType")
    if resource == "3":
        result["cpu"] = {"sockets": int(rasd("num_of_sockets") or 1),
                         "cores": int(rasd("cpu_per_socket") or 1),
                         "threads": int(rasd("threads_per_cpu") or 1)}
    elif resource == "4":
        result["memory"] = int(rasd("VirtualQuantity") or 1024) * 2**20
    elif resource == "10":
        result["nics"].append({"name": rasd("Name") or "nic1", "mac": rasd("MACAddress"),
                               "network": rasd("Connection") or ""})
    elif resource == "17":
        host_resource = rasd("HostResource") or ""
        result["disks"].append({"disk_id": host_resource.split("/")[0],
                                "volume_id": rasd("InstanceId"), "bootable": False,
                                "interface": "virtio_scsi"})
