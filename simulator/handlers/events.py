"""Events (the audit log): newest first, `search=`, `from=` and `max=`."""

from simulator.engine import Engine
from simulator.errors import bad_request
from simulator.handlers.common import list_answer
from simulator.routing import Request, Router, created, ok
from simulator.xmlio import find_id, find_int, find_text, href, ref


def render_event(event: dict) -> dict:
    """An event as `<event>`."""
    return {
        "@href": href(f"events/{event['id']}"), "@id": event["id"],
        "description": event["description"], "code": event.get("code", 0),
        "custom_id": -1, "flood_rate": 30, "index": int(event["id"]),
        "origin": event.get("origin", "oVirt"), "severity": event.get("severity", "normal"),
        "time": event["time"],
        "vm": ref("vms", event["vm"]) if event.get("vm") else None,
        "host": ref("hosts", event["host"]) if event.get("host") else None,
        "user": None,
    }


def event_fields(engine: Engine):
    """Searchable fields of an event (vm.name as the engine's search knows it)."""
    def fields(event: dict) -> dict:
        vm = engine.store["vms"].get(event.get("vm") or "")
        return {"id": event["id"], "severity": event.get("severity", "normal"),
                "description": event["description"], "type": event.get("code", 0),
                "vm.name": vm["name"] if vm else None, "vm.id": event.get("vm")}
    return fields


def register(router: Router, engine: Engine) -> None:
    """Routes of events."""
    def list_events(request: Request):
        with engine.lock:
            events = sorted(engine.store["events"].values(), key=lambda e: int(e["id"]),
                            reverse=True)
            since = request.query.get("from")
            if since and since.isdigit():
                events = [e for e in events if int(e["id"]) > int(since)]
            return list_answer(request, "events", "event", events, render_event,
                               event_fields(engine))

    def get_event(request: Request):
        with engine.lock:
            return ok("event", render_event(engine.get("events", request.params["id"], "event")))

    def add_event(request: Request):
        body = request.xml()
        description = find_text(body, "description")
        if not description:
            raise bad_request("Event [description] required for add")
        with engine.lock:
            engine.add_event(description, severity=find_text(body, "severity", "normal"),
                             code=find_int(body, "custom_id", 0) or 0,
                             vm=find_id(body, "vm"), host=find_id(body, "host"))
            engine.store["events"][str(engine.store.meta["event_seq"])]["origin"] = (
                find_text(body, "origin", "external"))
            engine.save()
            event = engine.store["events"][str(engine.store.meta["event_seq"])]
            return created("event", render_event(event))

    router.add("GET", "events", list_events)
    router.add("POST", "events", add_event)
    router.add("GET", "events/{id}", get_event)
