"""What the simulator tests share: polling, transfers through ovirtsdk4, qemu-img compare."""

import subprocess
import time
from pathlib import Path

import ovirtsdk4 as sdk
import ovirtsdk4.types as types

TIMEOUT = 30.0


def wait_for(read, done, timeout: float = TIMEOUT, interval: float = 0.05):
    """Poll read() until done(value); the last value, or AssertionError when it never comes."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        time.sleep(interval)
        value = read()
    return value


def wait_gone(read, timeout: float = TIMEOUT) -> None:
    """Poll read() until it raises NotFoundError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            read()
        except sdk.NotFoundError:
            return
        time.sleep(0.05)
    raise AssertionError(f"still there after {timeout} s")


def vm_named(connection, name: str):
    """The VM with that name."""
    return connection.system_service().vms_service().list(search=f"name={name}")[0]


def vm_disks(connection, vm) -> list:
    """The VM's disks, in attachment order."""
    system = connection.system_service()
    attachments = system.vms_service().vm_service(vm.id).disk_attachments_service().list()
    return [system.disks_service().disk_service(a.disk.id).get() for a in attachments]


def start_transfer(connection, **spec):
    """Add an image transfer and wait until it is transferring; (transfer, its service)."""
    transfers = connection.system_service().image_transfers_service()
    transfer = transfers.add(types.ImageTransfer(**spec))
    service = transfers.image_transfer_service(transfer.id)
    transfer = wait_for(service.get,
                        lambda t: t.phase != types.ImageTransferPhase.INITIALIZING)
    assert transfer.phase == types.ImageTransferPhase.TRANSFERRING
    return transfer, service


def finalize(service) -> types.ImageTransfer:
    """Finalize a transfer and wait for its end."""
    service.finalize()
    return wait_for(service.get, lambda t: t.phase in (
        types.ImageTransferPhase.FINISHED_SUCCESS, types.ImageTransferPhase.FINISHED_FAILURE))


def wait_disk_ok(connection, disk_id: str):
    """Wait until a disk is no longer locked."""
    service = connection.system_service().disks_service().disk_service(disk_id)
    return wait_for(service.get, lambda d: d.status != types.DiskStatus.LOCKED)


def qemu_compare(first: Path, first_format: str, second: Path, second_format: str) -> str:
    """qemu-img compare's verdict ('' when identical, its message otherwise)."""
    done = subprocess.run(["qemu-img", "compare", "-f", first_format, "-F", second_format,
                           str(first), str(second)], capture_output=True, text=True)
    return "" if done.returncode == 0 else (done.stdout + done.stderr).strip()


def snapshot_copy(path: Path, fmt: str, target: Path) -> Path:
    """A standalone qcow2 copy of an image chain as it is now (for later comparisons)."""
    subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "qcow2", str(path), str(target)],
                   check=True)
    return target
