"""Starting and stopping the simulator: state, certificates, data plane, HTTPS server."""

import logging
import os
import secrets
import signal
import ssl
import sys
import threading
from pathlib import Path

from simulator import pki as pki_module
from simulator.engine import Engine
from simulator.handlers import register_all
from simulator.routing import Router
from simulator.seeds import apply_seed
from simulator.server import SimulatorServer
from simulator.sso import USERNAME
from simulator.store import new_id, write_json_atomically

log = logging.getLogger("simulator")


def server_file(state_dir: Path) -> Path:
    """DIR/server.json: where the running simulator listens (for the CLI and tests)."""
    return state_dir / "server.json"


def _make_dataplane(state_dir: Path, host: str, tls: pki_module.Pki):
    try:
        from simulator.dataplane import DataPlane
    except ImportError:
        log.warning("simulator.dataplane is not available; serving the API without disk data")
        return None
    return DataPlane(state_dir, host=host, tls=(tls.key_file, tls.cert_file, tls.ca_file))


def build_engine(state_dir: Path, host: str, seed: str, password: str | None,
                 delay: float) -> Engine:
    """Load the state (or seed a fresh one) and attach the data plane."""
    tls = pki_module.ensure_pki(state_dir, host)
    engine = Engine(state_dir, host, delay, _make_dataplane(state_dir, host, tls))
    if engine.store.exists:
        engine.store.load()
        if password:
            engine.store.meta["password"] = password
    else:
        meta = engine.store.meta
        meta.update(password=password or secrets.token_urlsafe(12), instance_id=new_id(),
                    admin_id=new_id())
        apply_seed(engine, seed)
    engine.save()
    return engine


def recover(engine: Engine) -> None:
    """Resume what a stopped simulator left between states (locked snapshots, transfers)."""
    from simulator import faults
    from simulator.handlers import backups, disks, snapshots, transfers

    with engine.lock:
        faults.rearm(engine)
        for module in (snapshots, transfers, backups, disks):
            recover_module = getattr(module, "recover", None)
            if recover_module is not None:
                recover_module(engine)
        engine.save()


def serve(state_dir: Path, host: str, port: int, seed: str, password: str | None,
          delay: float) -> int:
    """Run the simulator until SIGTERM or SIGINT."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=state_dir / "simulator.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    engine = build_engine(state_dir, host, seed, password, delay)
    tls = pki_module.ensure_pki(state_dir, host)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    router = Router()
    register_all(router, engine)
    if engine.dataplane is not None:
        engine.dataplane.start()
    try:
        server = SimulatorServer((host, port), engine, router, context)
        engine.port = server.server_address[1]
        recover(engine)
        _announce(engine, state_dir, host)
        _stop_on_signals(server)
        server.serve_forever(poll_interval=0.2)
    finally:
        engine.stop_timers()
        if engine.dataplane is not None:
            engine.dataplane.stop()
        server_file(state_dir).unlink(missing_ok=True)
    return 0


def _announce(engine: Engine, state_dir: Path, host: str) -> None:
    url = f"https://{host}:{engine.port}/ovirt-engine/api"
    password = engine.store.meta["password"]
    write_json_atomically(server_file(state_dir), {
        "url": url, "host": host, "port": engine.port, "pid": os.getpid(),
        "ca_file": str(state_dir / "ca.pem"), "username": USERNAME, "password": password,
    }, mode=0o600)
    print(f"oVirt simulator API: {url}\nuser: {USERNAME}\npassword: {password}\n"
          f"CA certificate: {state_dir / 'ca.pem'}", flush=True)


def _stop_on_signals(server: SimulatorServer) -> None:
    def stop(signum, frame):
        # shutdown() waits for serve_forever, so it must not run in the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if hasattr(sys.stdout, "flush"):
        sys.stdout.flush()
