"""The restore point's OVF: what a restore reads from it, and the copy the engine is given.

A restore creates the VM from the OVF (CPUs, memory, OS, boot settings and the
rest come with it) but attaches disks and adds NICs itself: the restored disks
have new ids, and NICs must follow the network mapping and get new MAC
addresses when the VM is restored beside the original. So the OVF handed to
the engine has its disk and NIC items removed and carries the VM id chosen by
the restore.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from jobs.restore.points import RestoreError

OVF_NS = "http://schemas.dmtf.org/ovf/envelope/1/"
RASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NAMESPACES = {"ovf": OVF_NS, "rasd": RASD_NS, "vssd": VSSD_NS, "xsi": XSI_NS}
for _prefix, _uri in NAMESPACES.items():
    # xsi:type values name the "ovf" prefix, so serialisation must keep it.
    ET.register_namespace(_prefix, _uri)

DISK_RESOURCE = "17"
NIC_RESOURCE = "10"
# oVirt's VmInterfaceType numbers (rasd:ResourceSubType of a NIC item).
NIC_INTERFACES = {"0": "rtl8139_virtio", "1": "rtl8139", "2": "e1000", "3": "virtio",
                  "4": "spapr_vlan", "5": "pci_passthrough", "6": "e1000e"}
DISK_INTERFACES = {"virtio_scsi": "virtio_scsi", "virtio": "virtio", "ide": "ide", "sata": "sata",
                   "spapr_vscsi": "spapr_vscsi"}


@dataclass(frozen=True)
class OvfDisk:
    """A disk as the VM had it: attachment interface, bootable, format and allocation."""

    disk_id: str
    interface: str = "virtio_scsi"
    bootable: bool = False
    format: str = ""
    sparse: bool = True
    alias: str = ""


@dataclass(frozen=True)
class OvfNic:
    """A NIC as the VM had it: name, MAC, network name and card type."""

    name: str
    mac: str = ""
    network: str = ""
    interface: str = "virtio"


@dataclass
class OvfVm:
    """What a restore reads from an OVF."""

    name: str = ""
    vm_id: str = ""
    cluster_name: str = ""
    description: str = ""
    disks: dict[str, OvfDisk] = field(default_factory=dict)
    nics: list[OvfNic] = field(default_factory=list)


def _parse(text: str) -> ET.Element:
    if not text:
        raise RestoreError("the restore point holds no OVF (VM configuration): restore its disks "
                           "instead, or restore the VM from another restore point")
    try:
        return ET.fromstring(text.encode() if isinstance(text, str) else text)
    except ET.ParseError as exc:
        raise RestoreError(f"the restore point's OVF can't be read: {exc}") from None


def _rasd(item: ET.Element, name: str) -> str:
    return (item.findtext(f"rasd:{name}", namespaces=NAMESPACES) or "").strip()


def _attr(element: ET.Element, name: str) -> str:
    return element.get(f"{{{OVF_NS}}}{name}", "")


def _content(root: ET.Element) -> ET.Element:
    content = root.find("Content")
    if content is None:
        raise RestoreError("the restore point's OVF has no VirtualSystem (Content) section")
    return content


def _os_section(content: ET.Element) -> ET.Element | None:
    for section in content.findall("Section"):
        if section.get(f"{{{XSI_NS}}}type", "").endswith("OperatingSystemSection_Type"):
            return section
    return None


def _items(content: ET.Element) -> list[tuple[ET.Element, ET.Element]]:
    """(parent section, item) of every hardware item."""
    found = []
    for section in content.findall("Section"):
        if section.get(f"{{{XSI_NS}}}type", "").endswith("VirtualHardwareSection_Type"):
            found += [(section, item) for item in section.findall("Item")]
    return found


def read_ovf(text: str) -> OvfVm:
    """The VM's name, id, cluster, disks (by engine disk id) and NICs."""
    root = _parse(text)
    content = _content(root)
    os_section = _os_section(content)
    vm = OvfVm(name=content.findtext("Name") or "", cluster_name=content.findtext("ClusterName") or "",
               description=content.findtext("Description") or "",
               vm_id=_attr(os_section, "id") if os_section is not None else "")
    disk_entries = {_attr(d, "diskId"): d for d in root.iter("Disk")}
    for _, item in _items(content):
        resource = _rasd(item, "ResourceType")
        if resource == DISK_RESOURCE:
            disk = _disk_of(item, disk_entries)
            vm.disks[disk.disk_id] = disk
        elif resource == NIC_RESOURCE:
            vm.nics.append(OvfNic(
                name=_rasd(item, "Name") or _rasd(item, "ElementName") or f"nic{len(vm.nics) + 1}",
                mac=_rasd(item, "MACAddress"), network=_rasd(item, "Connection"),
                interface=NIC_INTERFACES.get(_rasd(item, "ResourceSubType"), "virtio")))
    return vm


def _disk_of(item: ET.Element, entries: dict[str, ET.Element]) -> OvfDisk:
    disk_id, _, volume_id = _rasd(item, "HostResource").partition("/")
    entry = entries.get(volume_id) or entries.get(_rasd(item, "InstanceId"))
    if entry is None:
        return OvfDisk(disk_id=disk_id, bootable=(item.findtext("BootOrder") or "0") not in ("", "0"))
    interface = _attr(entry, "disk-interface").lower()
    return OvfDisk(
        disk_id=disk_id, interface=DISK_INTERFACES.get(interface, "virtio_scsi"),
        bootable=_attr(entry, "boot") == "true",
        format="cow" if _attr(entry, "volume-format").upper() == "COW" else "raw",
        sparse=_attr(entry, "volume-type") != "Preallocated",
        alias=_attr(entry, "disk-alias"))


def engine_ovf(text: str, *, vm_id: str, name: str) -> str:
    """The OVF to create the restored VM from: no disks, no NICs, the given VM id and name."""
    root = _parse(text)
    content = _content(root)
    for references in root.findall("References"):
        for file in list(references):
            references.remove(file)
    for section in root.findall("Section"):
        for disk in section.findall("Disk"):
            section.remove(disk)
    for section, item in _items(content):
        if _rasd(item, "ResourceType") in (DISK_RESOURCE, NIC_RESOURCE):
            section.remove(item)
    os_section = _os_section(content)
    if os_section is not None:
        os_section.set(f"{{{OVF_NS}}}id", vm_id)
    name_element = content.find("Name")
    if name_element is not None:
        name_element.text = name
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
