"""Data centers, clusters, hosts, storage domains, networks, vNIC profiles, templates and tags."""

import os
import shutil

from simulator.engine import Engine
from simulator.errors import bad_request, conflict
from simulator.handlers.common import links, read_only_collection
from simulator.routing import Request, Router, created, removed
from simulator.store import new_id
from simulator.xmlio import Many, find_text, href, ref

VERSION = {"major": 4, "minor": 7}
BLANK_TEMPLATE_ID = "00000000-0000-0000-0000-000000000000"


def render_datacenter(dc: dict) -> dict:
    """A data center as `<data_center>`."""
    return {
        "@href": href(f"datacenters/{dc['id']}"), "@id": dc["id"],
        "name": dc["name"], "description": dc.get("description", ""),
        "link": links(f"datacenters/{dc['id']}", "clusters", "storagedomains", "networks"),
        "local": False, "status": "up", "storage_format": "v5", "version": VERSION,
        "supported_versions": Many("version", [VERSION]),
    }


def render_cluster(cluster: dict) -> dict:
    """A cluster as `<cluster>`."""
    return {
        "@href": href(f"clusters/{cluster['id']}"), "@id": cluster["id"],
        "name": cluster["name"], "description": cluster.get("description", ""),
        "cpu": {"architecture": "x86_64", "type": "Intel Cascadelake Server Family"},
        "version": VERSION, "data_center": ref("datacenters", cluster["data_center"]),
    }


def render_host(host: dict) -> dict:
    """A host (hypervisor) as `<host>`."""
    return {
        "@href": href(f"hosts/{host['id']}"), "@id": host["id"],
        "name": host["name"], "address": host["address"], "status": "up", "type": "rhel",
        "memory": host.get("memory", 64 * 2**30),
        "cpu": {"name": "Intel Xeon", "speed": 2400,
                "topology": {"cores": 8, "sockets": 2, "threads": 2}},
        "cluster": ref("clusters", host["cluster"]),
    }


def storage_usage(engine: Engine, sd: dict) -> tuple[int, int]:
    """Used and available bytes of a storage domain, from its image directory."""
    used = 0
    root = engine.storage_dir(sd["id"])
    if root.exists():
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                try:
                    used += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except FileNotFoundError:
                    pass
    real_free = shutil.disk_usage(engine.state_dir).free
    return used, max(0, min(sd["capacity"] - used, real_free))


def storage_domain_renderer(engine: Engine):
    """A function rendering a storage domain with its current usage."""
    def render(sd: dict) -> dict:
        used, available = storage_usage(engine, sd)
        committed = sum(d["provisioned_size"] for d in engine.store["disks"].values()
                        if d["storage_domain"] == sd["id"])
        return {
            "@href": href(f"storagedomains/{sd['id']}"), "@id": sd["id"],
            "name": sd["name"], "description": sd.get("description", ""),
            "link": links(f"storagedomains/{sd['id']}", "disks", "disksnapshots"),
            "available": available, "used": used, "committed": committed,
            "backup": False, "block_size": 512, "master": sd.get("master", False),
            "status": "active", "external_status": "ok", "storage_format": "v5", "type": "data",
            "storage": {"type": "nfs", "address": "nfs.example.test",
                        "path": f"/exports/{sd['name']}"},
            "data_centers": Many("data_center", [ref("datacenters", sd["data_center"])]),
        }
    return render


def render_network(network: dict) -> dict:
    """A logical network as `<network>`."""
    return {
        "@href": href(f"networks/{network['id']}"), "@id": network["id"],
        "name": network["name"], "description": network.get("description", ""),
        "link": links(f"networks/{network['id']}", "vnicprofiles"),
        "mtu": 1500, "usages": Many("usage", ["vm"]),
        "vlan": {"id": network["vlan"]} if network.get("vlan") else None,
        "data_center": ref("datacenters", network["data_center"]),
    }


def render_vnic_profile(profile: dict) -> dict:
    """A vNIC profile as `<vnic_profile>`."""
    return {
        "@href": href(f"vnicprofiles/{profile['id']}"), "@id": profile["id"],
        "name": profile["name"], "pass_through": {"mode": "disabled"},
        "network": ref("networks", profile["network"]),
    }


def render_template(template: dict) -> dict:
    """A template as `<template>` (Blank at least)."""
    return {
        "@href": href(f"templates/{template['id']}"), "@id": template["id"],
        "name": template["name"], "description": template.get("description", ""),
        "memory": template.get("memory", 2**30), "status": "ok", "type": "server",
        "cpu": {"topology": {"cores": 1, "sockets": 1, "threads": 1}},
        "os": {"type": "other", "boot": {"devices": Many("device", ["hd"])}},
        "version": {"version_number": 1, "version_name": "base version"},
    }


def render_tag(tag: dict) -> dict:
    """A tag as `<tag>`."""
    return {
        "@href": href(f"tags/{tag['id']}"), "@id": tag["id"],
        "name": tag["name"], "description": tag.get("description", ""),
        "parent": ref("tags", tag["parent"]) if tag.get("parent") else None,
    }


def register(router: Router, engine: Engine) -> None:
    """Routes of the inventory collections."""
    read_only_collection(router, engine, "datacenters", "data_center", render_datacenter)
    read_only_collection(router, engine, "clusters", "cluster", render_cluster)
    read_only_collection(router, engine, "hosts", "host", render_host)
    read_only_collection(router, engine, "storagedomains", "storage_domain",
                         storage_domain_renderer(engine))
    read_only_collection(router, engine, "networks", "network", render_network)
    read_only_collection(router, engine, "vnicprofiles", "vnic_profile", render_vnic_profile)
    read_only_collection(router, engine, "templates", "template", render_template)
    read_only_collection(router, engine, "tags", "tag", render_tag)
    _register_children(router, engine)
    router.add("POST", "tags", lambda request: add_tag(engine, request))
    router.add("DELETE", "tags/{id}", lambda request: remove_tag(engine, request))


def _register_children(router: Router, engine: Engine) -> None:
    from simulator.handlers.common import list_answer

    def children(collection, parent_key, plural, singular, render, parent_collection):
        def handler(request: Request):
            with engine.lock:
                parent = engine.get(parent_collection, request.params["id"])
                items = [e for e in engine.store[collection].values()
                         if e.get(parent_key) == parent["id"]]
                return list_answer(request, plural, singular, items, render)
        return handler

    router.add("GET", "datacenters/{id}/clusters", children(
        "clusters", "data_center", "clusters", "cluster", render_cluster, "datacenters"))
    router.add("GET", "datacenters/{id}/storagedomains", children(
        "storagedomains", "data_center", "storage_domains", "storage_domain",
        storage_domain_renderer(engine), "datacenters"))
    router.add("GET", "datacenters/{id}/networks", children(
        "networks", "data_center", "networks", "network", render_network, "datacenters"))
    router.add("GET", "networks/{id}/vnicprofiles", children(
        "vnicprofiles", "network", "vnic_profiles", "vnic_profile", render_vnic_profile,
        "networks"))


def add_tag(engine: Engine, request: Request):
    """POST /tags: a new tag with a unique name."""
    body = request.xml()
    name = find_text(body, "name")
    if not name:
        raise bad_request("Tag [name] required for add")
    with engine.lock:
        if any(t["name"] == name for t in engine.store["tags"].values()):
            raise conflict("Cannot add Tag. Tag name is in use.")
        tag = {"id": new_id(), "name": name, "description": find_text(body, "description", "")}
        engine.store["tags"][tag["id"]] = tag
        engine.save()
        return created("tag", render_tag(tag))


def remove_tag(engine: Engine, request: Request):
    """DELETE /tags/{id}: the tag and its uses on VMs."""
    with engine.lock:
        tag = engine.get("tags", request.params["id"], "tag")
        del engine.store["tags"][tag["id"]]
        for vm in engine.store["vms"].values():
            if tag["id"] in vm.get("tags", []):
                vm["tags"].remove(tag["id"])
        engine.save()
        return removed()
