"""The engine's search language as far as clients use it: `name=X`, `id=X`, wildcards, `and`."""

import fnmatch
import re

from simulator.errors import bad_request

TERM_RE = re.compile(r"^\s*([\w.]+)\s*(!=|>=|<=|=|>|<)\s*(.*?)\s*$")


def parse_search(search: str | None) -> list[tuple[str, str, str]]:
    """Terms of a search such as 'name=web* and status=up' (a leading 'Vms:' is dropped)."""
    if not search:
        return []
    search = re.sub(r"^\w+\s*:\s*", "", search.strip())
    terms = []
    for part in re.split(r"\s+and\s+", search, flags=re.IGNORECASE):
        if not part.strip():
            continue
        match = TERM_RE.match(part)
        if match is None:
            raise bad_request(f"Cannot understand the search term '{part}'; use field=value.",
                              reason="Invalid search")
        key, op, value = match.groups()
        terms.append((key.lower(), op, value.strip('"')))
    return terms


def matches(fields: dict, terms: list[tuple[str, str, str]], case_sensitive: bool) -> bool:
    """Whether an entity's searchable fields satisfy every term (unknown fields are ignored)."""
    for key, op, wanted in terms:
        if key not in fields:
            continue
        actual = fields[key]
        if op in ("=", "!="):
            equal = _equal(actual, wanted, case_sensitive)
            if equal != (op == "="):
                return False
        elif not _compare(actual, op, wanted):
            return False
    return True


def _equal(actual, wanted: str, case_sensitive: bool) -> bool:
    text = "" if actual is None else str(actual)
    if not case_sensitive:
        text, wanted = text.lower(), wanted.lower()
    return fnmatch.fnmatchcase(text, wanted) if "*" in wanted else text == wanted


def _compare(actual, op: str, wanted: str) -> bool:
    try:
        left, right = float(actual), float(wanted)
    except (TypeError, ValueError):
        left, right = str(actual), wanted
    return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]


def select(entities: list[dict], query: dict, fields_of) -> list[dict]:
    """Apply `search`, `case_sensitive` and `max` of a list request."""
    terms = parse_search(query.get("search"))
    case_sensitive = query.get("case_sensitive", "true").lower() != "false"
    chosen = [e for e in entities if not terms or matches(fields_of(e), terms, case_sensitive)]
    limit = query.get("max")
    if limit not in (None, "", "-1"):
        try:
            chosen = chosen[: int(limit)]
        except ValueError as error:
            raise bad_request(f"max must be an integer, not '{limit}'.") from error
    return chosen
