"""The end-to-end restore stack of a test, and what the tests do with it."""

from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.restore.points import SourceDisk, image_as_raw, write_restore_point

SESSION_TIMEOUT = 180.0


@dataclass
class Stack:
    """The simulator, the synced manager, the repository, and a folder for files and logs."""

    sim: object
    manager: object
    repository: object
    output_dir: Path

    @contextmanager
    def engine(self):
        from plugin import engine as ovirt

        with ovirt.connect(self.manager.credentials(), timeout=60) as engine:
            yield engine

    def vm(self, name: str):
        """The inventory row of a VM."""
        from inventory.models import VM

        return VM.objects.select_related("manager", "cluster").get(manager=self.manager, name=name)

    def guest_raw(self, disk_id: str, name: str) -> Path:
        """The guest's view of a simulator disk now, as a raw file kept under the test's folder."""
        path, fmt = self.sim.disk_image(disk_id)
        raw = image_as_raw(path, fmt, self.output_dir)
        return raw.rename(self.output_dir / f"{name}.raw")

    def back_up(self, vm_name: str, parent=None, label: str = "full"):
        """A restore point of the VM as it is now, and its disks' raw images by source disk id."""
        from plugin import engine as ovirt

        with self.engine() as engine:
            vm = ovirt.find_vm(engine, vm_name)
            ovf = ovirt.get_vm_ovf(engine, vm.id)
            disks = [ovirt.get_disk(engine, a.disk_id) for a in vm.disk_attachments]
        sources, images = [], {}
        for disk in disks:
            path, fmt = self.sim.disk_image(disk.id)
            sources.append(SourceDisk(disk.id, disk.name, path, fmt, disk.format))
            images[disk.id] = self.guest_raw(disk.id, f"{label}-{disk.name}")
        point = write_restore_point(self.repository, vm_id=vm.id, vm_name=vm.name, disks=sources,
                                    folder=self.output_dir, ovf=ovf, vm=self.vm(vm_name),
                                    parent=parent)
        return point, images

    def restore(self, request, timeout: float = SESSION_TIMEOUT):
        """Submit a restore and wait until its session ends; the session row."""
        from jobs.restore.requests import submit_restore

        return self.wait(submit_restore(request), timeout)

    def wait(self, session, timeout: float = SESSION_TIMEOUT, until=None):
        """Poll the session until it ends (or ``until(session)`` holds); the session row."""
        until = until or (lambda s: s.is_terminal)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            session.refresh_from_db()
            if until(session):
                return session
            time.sleep(0.2)
        raise AssertionError(f"session {session.pk} still {session.state} after {timeout} s\n"
                             f"{session_log(session)}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.output_dir.glob("*.log")))

    def configuration(self, vm_id: str) -> dict:
        """What must survive a restore: CPUs, memory, OS, NICs, and disks by name with interface and boot."""
        from plugin import engine as ovirt

        with self.engine() as engine:
            vm = ovirt.get_vm(engine, vm_id)
            disks = {a.disk_id: ovirt.get_disk(engine, a.disk_id) for a in vm.disk_attachments}
            profiles = {p.id: p.name for p in ovirt.list_vnic_profiles(engine)}
        return {
            "cpus": vm.cpus, "memory": vm.memory, "os": vm.os_type,
            "nics": sorted((n.name, n.interface, profiles.get(n.vnic_profile_id or "", "")) for n in vm.nics),
            "disks": sorted((disks[a.disk_id].name.removesuffix("_restored"), a.interface, a.bootable,
                             disks[a.disk_id].provisioned_size) for a in vm.disk_attachments),
            "boot_devices": vm.boot_devices,
        }

    def macs(self, vm_id: str) -> set[str]:
        from plugin import engine as ovirt

        with self.engine() as engine:
            return {n.mac for n in ovirt.get_vm(engine, vm_id).nics}


def session_log(session) -> str:
    return "\n".join(f"{line.level}: {line.message}" for line in session.log_lines.order_by("pk"))


def same_image(a: Path, a_format: str, b: Path, b_format: str = "raw") -> bool:
    """qemu-img compare: identical guest-visible content (and size)."""
    result = subprocess.run(["qemu-img", "compare", "-U", "-f", a_format, "-F", b_format,
                             str(a), str(b)], capture_output=True, text=True)
    return result.returncode == 0
