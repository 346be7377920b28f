"""XML as the oVirt API writes it and as ovirtsdk4 reads it, and parsing of what the SDK sends.

An entity is rendered from a plain dict: keys starting with "@" are attributes (id, href, rel),
a dict value is a nested element, a `Many` value is a plural wrapper around singular items
(`<nics><nic/>...</nics>`), a list of dicts repeats the element (used for `<link>`), None is
left out. Booleans are "true"/"false" and dates carry a time zone, as the SDK's reader expects.
"""

import datetime
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

API = "/ovirt-engine/api"


@dataclass
class Many:
    """A plural element holding singular items: Many("nic", [...]) under the key "nics"."""

    tag: str
    items: list = field(default_factory=list)


def href(path: str) -> str:
    """The absolute href of an API path such as "vms/ID"."""
    return f"{API}/{path}"


def ref(path: str, entity_id: str) -> dict:
    """A link to another entity, as `<cluster href=".../clusters/ID" id="ID"/>`."""
    return {"@href": href(f"{path}/{entity_id}"), "@id": entity_id}


def text_of(value) -> str:
    """The XML text of a scalar value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.isoformat(timespec="milliseconds")
    return str(value)


def render(tag: str, value) -> str:
    """The XML text of one element."""
    parts: list[str] = []
    _write(parts, tag, value)
    return "".join(parts)


def document(tag: str, value) -> bytes:
    """A complete XML document with one root element."""
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + render(tag, value)).encode()


def _write(parts: list[str], tag: str, value) -> None:
    if value is None:
        return
    if isinstance(value, Many):
        parts.append(f"<{tag}>")
        for item in value.items:
            _write(parts, value.tag, item)
        parts.append(f"</{tag}>")
    elif isinstance(value, list):
        for item in value:
            _write(parts, tag, item)
    elif isinstance(value, dict):
        attrs = "".join(f" {k[1:]}={quoteattr(text_of(v))}" for k, v in value.items()
                        if k.startswith("@") and v is not None)
        children = [(k, v) for k, v in value.items() if not k.startswith("@") and v is not None]
        if not children:
            parts.append(f"<{tag}{attrs}/>")
            return
        parts.append(f"<{tag}{attrs}>")
        for key, child in children:
            _write(parts, key, child)
        parts.append(f"</{tag}>")
    else:
        parts.append(f"<{tag}>{escape(text_of(value))}</{tag}>")


class BadRequest(ValueError):
    """The request body can't be understood; answered with 400."""


def parse(body: bytes) -> ET.Element:
    """The root element of a request body; BadRequest when it isn't XML."""
    if not body or not body.strip():
        raise BadRequest("The request body is empty; send the entity as XML.")
    try:
        return ET.fromstring(body)
    except ET.ParseError as error:
        raise BadRequest(f"The request body isn't well-formed XML: {error}") from error


def find_text(element: ET.Element | None, path: str, default: str | None = None) -> str | None:
    """The stripped text at path below element, or default."""
    if element is None:
        return default
    found = element.find(path)
    if found is None or found.text is None:
        return default
    return found.text.strip()


def find_id(element: ET.Element | None, path: str) -> str | None:
    """The id attribute (or `<id>` child) of the element at path."""
    if element is None:
        return None
    found = element.find(path)
    if found is None:
        return None
    return found.get("id") or find_text(found, "id")


def find_bool(element: ET.Element | None, path: str, default: bool | None = None) -> bool | None:
    """A boolean child element."""
    value = find_text(element, path)
    if value is None:
        return default
    return value.lower() == "true"


def find_int(element: ET.Element | None, path: str, default: int | None = None) -> int | None:
    """An integer child element; BadRequest when it isn't one."""
    value = find_text(element, path)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as error:
        raise BadRequest(f"The value of '{path}' must be an integer, not '{value}'.") from error
