"""The API root: product info (what "test connection" shows), summary and links."""

from simulator.engine import Engine, now
from simulator.routing import Request, Router, ok
from simulator.xmlio import API

PRODUCT_VERSION = {"build": 6, "full_version": "4.5.6-1.el9", "major": 4, "minor": 5,
                   "revision": 0}
ROOT_LINKS = ("clusters", "datacenters", "disks", "events", "hosts", "imagetransfers",
              "networks", "storagedomains", "tags", "templates", "vms", "vnicprofiles")


def render_api(engine: Engine) -> dict:
    """The `<api>` root element."""
    store = engine.store
    up = sum(1 for vm in store["vms"].values() if vm["status"] == "up")
    return {
        "link": [{"@href": f"{API}/{rel}", "@rel": rel} for rel in ROOT_LINKS],
        "product_info": {"instance_id": store.meta.get("instance_id", ""),
                         "name": "oVirt Engine", "vendor": "ovirt.org",
                         "version": PRODUCT_VERSION},
        "special_objects": {"blank_template": {
            "@href": f"{API}/templates/00000000-0000-0000-0000-000000000000",
            "@id": "00000000-0000-0000-0000-000000000000"}},
        "summary": {
            "hosts": {"active": len(store["hosts"]), "total": len(store["hosts"])},
            "storage_domains": {"active": len(store["storagedomains"]),
                                "total": len(store["storagedomains"])},
            "users": {"active": 1, "total": 1},
            "vms": {"active": up, "total": len(store["vms"])},
        },
        "time": now(),
        "authenticated_user": {"@href": f"{API}/users/{store.meta.get('admin_id', '')}",
                               "@id": store.meta.get("admin_id", "")},
    }


def register(router: Router, engine: Engine) -> None:
    """The root route."""
    def root(request: Request):
        with engine.lock:
            return ok("api", render_api(engine))

    router.add("GET", "", root)
