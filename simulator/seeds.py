"""Seeds: the model a fresh state directory starts with (`demo`, `small`, `two-dc`, `inventory:N`).

Ids are derived from the seed's names, so two fresh starts of one seed agree. Disk contents are
generated deterministically by the data plane (a mix of zero, compressible and random data),
sparse on disk; `inventory:N` disks are tiny and created only when first used.
"""

import re
import uuid

from simulator.engine import Engine
from simulator.handlers.disks import new_disk
from simulator.handlers.inventory import BLANK_TEMPLATE_ID
from simulator.handlers.vm_devices import MAC_PREFIX
from simulator.handlers.vms import new_vm

NAMESPACE = uuid.UUID("6f1d2a7e-8c3b-4e52-9a0d-1b7c5e9f3a21")
MiB, GiB = 2**20, 2**30


def stable_id(*names) -> str:
    """An id that is the same for the same seed names on every fresh start."""
    return str(uuid.uuid5(NAMESPACE, ":".join(str(n) for n in names)))


def parse_seed(seed: str) -> tuple[str, int]:
    """('demo'|'small'|'two-dc'|'inventory', N); ValueError with what to write otherwise."""
    match = re.fullmatch(r"(demo|small|two-dc)|inventory:(\d+)", seed)
    if match is None:
        raise ValueError(f"Unknown seed '{seed}'; use demo, small, two-dc or inventory:N.")
    if match.group(1):
        return match.group(1), 0
    return "inventory", int(match.group(2))


def apply_seed(engine: Engine, seed: str) -> None:
    """Fill an empty model with a seed."""
    name, count = parse_seed(seed)
    _infrastructure(engine, two_clusters=(name == "demo"))
    if name == "demo":
        _demo_vms(engine)
    elif name == "small":
        _small_vms(engine)
    elif name == "two-dc":
        _small_vms(engine)
        _remote_data_center(engine)
    else:
        _inventory_vms(engine, count)
    engine.store.meta["seed"] = seed
    engine.add_event(f"The simulator was seeded with '{seed}'.", code=0)


def _add(engine: Engine, collection: str, entity: dict) -> str:
    engine.store[collection][entity["id"]] = entity
    return entity["id"]


def _infrastructure(engine: Engine, two_clusters: bool) -> None:
    dc = _add(engine, "datacenters", {"id": stable_id("dc", "Default"), "name": "Default",
                                      "description": "The default Data Center"})
    clusters = ["Production", "Development"] if two_clusters else ["Default"]
    for index, name in enumerate(clusters):
        _add(engine, "clusters", {"id": stable_id("cluster", name), "name": name,
                                  "data_center": dc})
        hosts = (["host1", "host2"] if index == 0 else ["host3"]) if two_clusters else ["host1"]
        for host in hosts:
            _add(engine, "hosts", {"id": stable_id("host", host), "name": host,
                                   "address": engine.host, "cluster": stable_id("cluster", name)})
    for index, sd in enumerate(["data1", "data2"]):
        _add(engine, "storagedomains", {"id": stable_id("sd", sd), "name": sd,
                                        "data_center": dc, "capacity": 2048 * GiB,
                                        "master": index == 0})
    for vlan, network in enumerate(["ovirtmgmt", "backend"]):
        net = _add(engine, "networks", {"id": stable_id("net", network), "name": network,
                                        "data_center": dc, "vlan": vlan * 100 or None})
        _add(engine, "vnicprofiles", {"id": stable_id("profile", network), "name": network,
                                      "network": net})
    _add(engine, "templates", {"id": BLANK_TEMPLATE_ID, "name": "Blank",
                               "description": "Blank template", "memory": GiB})
    _add(engine, "tags", {"id": stable_id("tag", "production"), "name": "production",
                          "description": "Production workloads"})
    _add(engine, "tags", {"id": stable_id("tag", "nightly"), "name": "nightly",
                          "description": "Backed up nightly"})


def _vm(engine: Engine, name: str, cluster: str, status: str, disks: list[tuple],
        cpus: int = 1, memory: int = 2 * GiB, os: str = "rhel_8x64", tags=(),
        materialize: bool = True, domains=("data1", "data2"),
        profile: str = stable_id("profile", "ovirtmgmt")) -> dict:
    """A VM with a NIC and disks given as (alias, format, size, allocated_fraction).

    Its disks alternate between the storage domains named in ``domains``.
    """
    hosts = [h for h in engine.store["hosts"].values() if h["cluster"] == stable_id("cluster",
                                                                                    cluster)]
    vm = new_vm(engine, name, stable_id("cluster", cluster), id=stable_id("vm", name),
                status=status, memory=memory, os=os, host=hosts[0]["id"] if hosts else None,
                cpu={"sockets": 1, "cores": cpus, "threads": 1}, description=f"{name} (seed)",
                tags=[stable_id("tag", t) for t in tags])
    # Straight from the MAC sequence: scanning every VM's NICs per VM is quadratic for N=2000.
    seq = engine.store.meta["mac_seq"] = engine.store.meta.get("mac_seq", 0) + 1
    vm["nics"].append({"id": stable_id("nic", name), "name": "nic1", "interface": "virtio",
                       "mac": f"{MAC_PREFIX}:{(seq >> 16) & 255:02x}:{(seq >> 8) & 255:02x}:"
                              f"{seq & 255:02x}",
                       "vnic_profile": profile})
    for index, (alias, fmt, size, fraction) in enumerate(disks):
        sd = stable_id("sd", domains[index % len(domains)])
        disk = new_disk(engine, alias, sd, size, fmt, id=stable_id("disk", alias))
        disk["volumes"][0]["id"] = stable_id("volume", alias)
        disk["volumes"][0]["seed"] = {"seed": int(stable_id("s", alias)[:8], 16),
                                      "allocated_fraction": fraction}
        vm["disk_attachments"].append({"disk": disk["id"], "bootable": index == 0,
                                       "interface": "virtio_scsi", "active": True})
        if materialize:
            engine.materialize(disk)
    return vm


def _demo_vms(engine: Engine) -> None:
    _vm(engine, "web01", "Production", "up", [
        ("web01_os", "cow", 8 * GiB, 0.015), ("web01_data", "raw", 2 * GiB, 0.04)],
        cpus=2, memory=4 * GiB, tags=["production", "nightly"])
    _vm(engine, "db01", "Production", "up", [
        ("db01_os", "cow", 4 * GiB, 0.02), ("db01_data", "cow", 8 * GiB, 0.012),
        ("db01_log", "raw", 1 * GiB, 0.05)], cpus=4, memory=8 * GiB, tags=["production"])
    _vm(engine, "app01", "Production", "down", [("app01_os", "cow", 2 * GiB, 0.04)],
        tags=["nightly"])
    _vm(engine, "dev01", "Development", "up", [
        ("dev01_os", "raw", 4 * GiB, 0.02), ("dev01_scratch", "cow", 1 * GiB, 0.06)])
    _vm(engine, "win01", "Development", "down", [("win01_os", "cow", 6 * GiB, 0.015)],
        cpus=2, memory=4 * GiB, os="windows_2019x64")


def _small_vms(engine: Engine) -> None:
    _vm(engine, "small-vm1", "Default", "up", [
        ("small-vm1_os", "cow", 64 * MiB, 0.5), ("small-vm1_data", "raw", 128 * MiB, 0.25)])
    _vm(engine, "small-vm2", "Default", "down", [
        ("small-vm2_os", "cow", 256 * MiB, 0.125), ("small-vm2_data", "cow", 64 * MiB, 0.5)])


def _remote_data_center(engine: Engine) -> None:
    """A second data center, Remote, with a cluster, a host, a storage domain, its own
    ovirtmgmt and a VM: what a disk or network of one data center can't be used from the other."""
    dc = _add(engine, "datacenters", {"id": stable_id("dc", "Remote"), "name": "Remote",
                                      "description": "A second data center"})
    cluster = _add(engine, "clusters", {"id": stable_id("cluster", "Remote"), "name": "Remote",
                                        "data_center": dc})
    _add(engine, "hosts", {"id": stable_id("host", "remote-host1"), "name": "remote-host1",
                           "address": engine.host, "cluster": cluster})
    _add(engine, "storagedomains", {"id": stable_id("sd", "remote1"), "name": "remote1",
                                    "data_center": dc, "capacity": 2048 * GiB, "master": True})
    net = _add(engine, "networks", {"id": stable_id("net", "Remote", "ovirtmgmt"), "name": "ovirtmgmt",
                                    "data_center": dc, "vlan": None})
    profile = _add(engine, "vnicprofiles", {"id": stable_id("profile", "Remote", "ovirtmgmt"),
                                            "name": "ovirtmgmt", "network": net})
    _vm(engine, "remote-vm1", "Remote", "down", [("remote-vm1_os", "cow", 64 * MiB, 0.25)],
        domains=("remote1",), profile=profile)


def _inventory_vms(engine: Engine, count: int) -> None:
    for index in range(count):
        name = f"vm{index:05d}"
        _vm(engine, name, "Default", "up" if index % 3 else "down",
            [(f"{name}_os", "cow", 16 * MiB, 0.0)], materialize=False)
