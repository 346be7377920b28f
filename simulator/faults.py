"""Injected faults: what the `fault` command and the admin endpoint arm, list and clear.

Kinds:
- fail: the next `count` API calls matching `match` ("POST snapshots", "GET vms", "POST finalize",
  "POST backups/finalize" for one kind of finalize only, "*") answer `status` with `reason`.
- slow: every API answer waits `seconds` first.
- imageio-drop: imageio connections of transfers drop after `bytes` bytes (`count` cuts).
- stuck-finalizing: the next `count` finalized transfers stay in finalizing_success until cleared.
- snapshot-locked: the next `count` snapshots stay locked until cleared.
- backup-fail-initializing: the next `count` backups fail while initializing.
- backup-stuck-finalizing: the next `count` finalized backups stay in finalizing until cleared.
Faults that catch entities stay listed until cleared; `fail` faults go once used up.
"""

import time

from simulator.engine import Engine
from simulator.errors import ApiError, bad_request
from simulator.store import new_id

KINDS = ("fail", "slow", "imageio-drop", "stuck-finalizing", "snapshot-locked",
         "backup-fail-initializing", "backup-stuck-finalizing")


def add(engine: Engine, spec: dict) -> dict:
    """Arm a fault from a spec {kind, count, match, status, reason, bytes, seconds}."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise bad_request(f"Unknown fault kind '{kind}'; use one of {', '.join(KINDS)}.",
                          reason="Invalid fault")
    fault = {"id": new_id()[:8], "kind": kind, "count": spec.get("count"), "used": 0,
             "match": spec.get("match") or "*", "status": int(spec.get("status") or 409),
             "reason": spec.get("reason") or "Operation Failed",
             "detail": spec.get("detail") or "[Injected fault]",
             "bytes": spec.get("bytes"), "seconds": float(spec.get("seconds") or 0)}
    if kind == "imageio-drop":
        if not fault["bytes"]:
            raise bad_request("imageio-drop needs bytes (drop each connection after N bytes).")
        engine.require_dataplane().drop_connections_after(None, int(fault["bytes"]),
                                                          count=fault["count"])
    engine.store.faults.append(fault)
    engine.save()
    return fault


def rearm(engine: Engine) -> None:
    """Arm the data plane's faults again after a restart (it keeps them in memory only)."""
    for fault in engine.store.faults:
        if fault["kind"] == "imageio-drop" and engine.dataplane is not None:
            engine.dataplane.drop_connections_after(None, int(fault["bytes"]),
                                                    count=fault["count"])


def clear(engine: Engine, fault_id: str | None = None) -> list[dict]:
    """Remove one fault, or all; returns what was removed."""
    removed = [f for f in engine.store.faults if fault_id in (None, f["id"])]
    engine.store.data["faults"] = [f for f in engine.store.faults if f not in removed]
    if any(f["kind"] == "imageio-drop" for f in removed) and engine.dataplane is not None:
        engine.dataplane.clear_faults()
    engine.save()
    return removed


def take(engine: Engine, kind: str, match: str | tuple[str, ...] | None = None) -> dict | None:
    """Use one count of an armed fault of this kind (and matching one of ``match``), or None."""
    matches = (match,) if isinstance(match, str) else match
    for fault in engine.store.faults:
        if fault["kind"] != kind:
            continue
        if matches is not None and fault["match"] != "*" and fault["match"] not in matches:
            continue
        if fault["count"] is not None and fault["used"] >= int(fault["count"]):
            continue
        fault["used"] += 1
        if kind == "fail" and fault["count"] is not None and fault["used"] >= int(fault["count"]):
            engine.store.data["faults"].remove(fault)
        engine.save()
        return fault
    return None


def active(engine: Engine, kind: str) -> bool:
    """Whether a fault of this kind is still armed (stuck entities wait for its clearing)."""
    return any(f["kind"] == kind for f in engine.store.faults)


def before_request(engine: Engine, kinds: tuple[str, ...]) -> None:
    """Apply slow and fail faults to an API call of these kinds ("METHOD segment",
    "METHOD parent/segment")."""
    with engine.lock:
        delay = max((f["seconds"] for f in engine.store.faults if f["kind"] == "slow"),
                    default=0.0)
        failure = take(engine, "fail", kinds)
    if delay:
        time.sleep(delay)
    if failure is not None:
        raise ApiError(failure["status"], failure["reason"], failure["detail"])
