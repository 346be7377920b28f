"""Helpers every collection uses: list and get routes, links to sub-collections."""

from collections.abc import Callable

from simulator import search
from simulator.engine import Engine
from simulator.routing import Request, Router, ok
from simulator.xmlio import Many, href

Render = Callable[[dict], dict]


def links(base: str, *rels: str) -> list[dict]:
    """`<link rel=... href=.../>` elements for an entity's sub-collections."""
    return [{"@href": href(f"{base}/{rel}"), "@rel": rel} for rel in rels]


def default_fields(entity: dict) -> dict:
    """Searchable fields of an entity: its scalar values."""
    return {k: v for k, v in entity.items() if isinstance(v, str | int | float | bool)}


def list_answer(request: Request, plural: str, singular: str, entities: list[dict],
                render: Render, fields: Callable[[dict], dict] = default_fields):
    """The answer to a list request, honouring search and max."""
    chosen = search.select(entities, request.query, fields)
    return ok(plural, Many(singular, [render(e) for e in chosen]))


def read_only_collection(router: Router, engine: Engine, path: str, singular: str,
                         render: Render, fields: Callable[[dict], dict] = default_fields) -> None:
    """Register GET /path and GET /path/{id} for a top-level collection (root tag singular+s)."""
    def list_all(request: Request):
        with engine.lock:
            return list_answer(request, singular + "s", singular,
                               list(engine.store[path].values()), render, fields)

    def get_one(request: Request):
        with engine.lock:
            return ok(singular, render(engine.get(path, request.params["id"], singular)))

    router.add("GET", path, list_all)
    router.add("GET", f"{path}/{{id}}", get_one)
