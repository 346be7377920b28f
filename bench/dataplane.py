"""Simulator data plane: how fast a seed is made and a disk is downloaded through imageio."""

import shutil
import tempfile
from pathlib import Path

from bench.report import stopwatch

GiB = 1024**3
MiB = 1024**2


def run(report) -> None:
    from ovirt_imageio import client

    from simulator.dataplane import DataPlane
    from simulator.pki import ensure_pki

    state = Path(tempfile.mkdtemp(prefix="bench-dataplane-", dir="/var/tmp"))
    try:
        pki = ensure_pki(state, "127.0.0.1")
        plane = DataPlane(state, tls=(pki.key_file, pki.cert_file, pki.ca_file))
        for fmt in ("raw", "cow"):
            volume = state / f"seed8g.{fmt}"
            with stopwatch() as took:
                plane.seed_volume(volume, fmt, 8 * GiB, seed=1, allocated_fraction=0.25)
            actual = plane.volume_info(volume)["actual_size"]
            report.row(f"dataplane seed 8 GiB {fmt} (25% allocated)", seconds=took["seconds"],
                       allocated_mib=actual // MiB)
            plane.delete_volume(volume)
        plane.start()
        try:
            for fmt in ("raw", "cow"):
                volume = state / f"disk256.{fmt}"
                plane.seed_volume(volume, fmt, 256 * MiB, seed=2, allocated_fraction=1.0)
                for via in ("unix socket", "tls"):
                    if via == "tls":
                        # The relay's address makes the client stay on TLS, as a remote worker.
                        plane.drop_connections_after(None, 1 << 62)
                    endpoint = plane.open_transfer(f"bench-{fmt}", volume, fmt, "download",
                                                   "raw", 256 * MiB, 600, 60)
                    target = state / "download.qcow2"
                    with stopwatch() as took:
                        client.download(endpoint.transfer_url, str(target), str(pki.ca_file))
                    plane.close_transfer(f"bench-{fmt}")
                    plane.clear_faults()
                    target.unlink()
                    report.row(f"dataplane download 256 MiB {fmt} ({via})",
                               seconds=took["seconds"],
                               mb_per_s=256 * MiB / took["seconds"] / 1e6)
        finally:
            plane.stop()
    finally:
        shutil.rmtree(state, ignore_errors=True)
