"""Reading a restore point's OVF, and the copy the engine is given (no disks, no NICs, the chosen id)."""

import xml.etree.ElementTree as ET

import pytest

from jobs.restore.ovf import NAMESPACES, engine_ovf, read_ovf
from jobs.restore.points import RestoreError

# The shape an oVirt 4.5 engine exports (shortened): References, NetworkSection,
# DiskSection, then the VirtualSystem with OS and hardware sections.
OVF = """<?xml version='1.0' encoding='UTF-8'?>
<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/"
 xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
 xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ovf:version="4.4.0.0">
 <References>
  <File ovf:href="d-os/v-os" ovf:id="v-os" ovf:size="10737418240" ovf:description="web1_os"/>
  <File ovf:href="d-data/v-data" ovf:id="v-data" ovf:size="2147483648" ovf:description="web1_data"/>
 </References>
 <Section xsi:type="ovf:NetworkSection_Type"><Info>List of networks</Info>
  <Network ovf:name="ovirtmgmt"/><Network ovf:name="backend"/></Section>
 <Section xsi:type="ovf:DiskSection_Type"><Info>List of Virtual Disks</Info>
  <Disk ovf:diskId="v-os" ovf:size="10" ovf:fileRef="d-os/v-os" ovf:volume-format="COW"
   ovf:volume-type="Sparse" ovf:disk-interface="VirtIO_SCSI" ovf:boot="true" ovf:disk-alias="web1_os"/>
  <Disk ovf:diskId="v-data" ovf:size="2" ovf:fileRef="d-data/v-data" ovf:volume-format="RAW"
   ovf:volume-type="Preallocated" ovf:disk-interface="VirtIO" ovf:boot="false" ovf:disk-alias="web1_data"/>
 </Section>
 <Content ovf:id="out" xsi:type="ovf:VirtualSystem_Type">
  <Name>web1</Name><Description>front end</Description><ClusterName>Production</ClusterName>
  <Section ovf:id="vm-1" ovf:required="false" xsi:type="ovf:OperatingSystemSection_Type">
   <Info>Guest Operating System</Info><Description>rhel_9x64</Description></Section>
  <Section xsi:type="ovf:VirtualHardwareSection_Type"><Info>2 CPU, 4096 Memory</Info>
   <Item><rasd:Caption>2 virtual cpu</rasd:Caption><rasd:ResourceType>3</rasd:ResourceType>
    <rasd:num_of_sockets>1</rasd:num_of_sockets><rasd:cpu_per_socket>2</rasd:cpu_per_socket></Item>
   <Item><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>4096</rasd:VirtualQuantity></Item>
   <Item><rasd:Caption>web1_os</rasd:Caption><rasd:InstanceId>v-os</rasd:InstanceId>
    <rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>d-os/v-os</rasd:HostResource>
    <Type>disk</Type><Device>disk</Device><BootOrder>1</BootOrder></Item>
   <Item><rasd:Caption>web1_data</rasd:Caption><rasd:InstanceId>v-data</rasd:InstanceId>
    <rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>d-data/v-data</rasd:HostResource>
    <Type>disk</Type><Device>disk</Device><BootOrder>0</BootOrder></Item>
   <Item><rasd:Caption>Ethernet adapter on ovirtmgmt</rasd:Caption><rasd:InstanceId>n-1</rasd:InstanceId>
    <rasd:ResourceType>10</rasd:ResourceType><rasd:ResourceSubType>3</rasd:ResourceSubType>
    <rasd:Connection>ovirtmgmt</rasd:Connection><rasd:Name>nic1</rasd:Name>
    <rasd:MACAddress>56:6f:1a:00:00:01</rasd:MACAddress><Type>interface</Type></Item>
   <Item><rasd:ResourceType>10</rasd:ResourceType><rasd:ResourceSubType>6</rasd:ResourceSubType>
    <rasd:Connection>backend</rasd:Connection><rasd:Name>nic2</rasd:Name>
    <rasd:MACAddress>56:6f:1a:00:00:02</rasd:MACAddress></Item>
   <Item><rasd:ResourceType>23</rasd:ResourceType><rasd:Caption>USB Controller</rasd:Caption></Item>
  </Section>
 </Content>
</ovf:Envelope>"""


def test_it_reads_the_vm_disks_and_nics_as_the_engine_exported_them():
    vm = read_ovf(OVF)

    assert (vm.name, vm.vm_id, vm.cluster_name, vm.description) == ("web1", "vm-1", "Production", "front end")
    assert vm.disks["d-os"].interface == "virtio_scsi" and vm.disks["d-os"].bootable
    assert vm.disks["d-os"].format == "cow" and vm.disks["d-os"].sparse
    assert vm.disks["d-data"].interface == "virtio" and not vm.disks["d-data"].bootable
    assert vm.disks["d-data"].format == "raw" and not vm.disks["d-data"].sparse
    assert [(n.name, n.network, n.mac, n.interface) for n in vm.nics] == [
        ("nic1", "ovirtmgmt", "56:6f:1a:00:00:01", "virtio"), ("nic2", "backend", "56:6f:1a:00:00:02", "e1000e")]


def test_the_engine_copy_has_no_disks_or_nics_and_carries_the_new_id_and_name():
    text = engine_ovf(OVF, vm_id="vm-new", name="web1-copy")

    root = ET.fromstring(text.encode())
    assert root.find("References") is not None and not list(root.find("References"))
    assert not list(root.iter("Disk"))
    resources = [i.findtext("rasd:ResourceType", namespaces=NAMESPACES) for i in root.iter("Item")]
    assert resources == ["3", "4", "23"]
    vm = read_ovf(text)
    assert (vm.vm_id, vm.name, vm.disks, vm.nics) == ("vm-new", "web1-copy", {}, [])
    # Prefixes survive: xsi:type values name "ovf:".
    assert 'xsi:type="ovf:VirtualHardwareSection_Type"' in text and "<Network ovf:name=\"backend\"" in text


@pytest.mark.parametrize("text, message", [
    ("", "holds no OVF"), ("<not xml", "can't be read"), ("<ovf/>", "no VirtualSystem"),
])
def test_a_missing_or_broken_ovf_says_what_to_do(text, message):
    with pytest.raises(RestoreError, match=message):
        read_ovf(text)
