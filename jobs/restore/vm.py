"""Entire VM restore: disks first, then the VM from the restore point's OVF, then (in place) the swap.

Order matters for safety: every disk is created and uploaded, and the VM is
created with its disks attached, while the original VM is untouched. Only then,
for an in-place restore, is the original stopped and removed and the restored
VM given its name and MAC addresses. Until that moment a failure removes what
the session created and leaves the original as it was.
"""

from __future__ import annotations

import uuid

from jobs.models import ReplacedVm
from jobs.models.replaced_vms import current_vm_engine_id
from jobs.restore import targets
from jobs.restore.disks import (
    DiskJob,
    create_disks,
    disk_job,
    inventory_cluster,
    upload_disks,
    wake_workers,
)
from jobs.restore.ovf import OvfDisk, OvfVm, engine_ovf, read_ovf
from jobs.restore.points import RestoreError
from jobs.restore.run import RestoreRun
from plugin import engine as ovirt
from plugin.errors import EngineError, EngineTimeout, EngineUnreachable, NotFound
from plugin.placement import Placement, find_cluster, vnic_profile, vnic_profiles_by_network


def restore_vm(run: RestoreRun) -> str:
    """Restore the restore point's VM as the request says; the summary line."""
    request, point, engine = run.request, run.point, run.engine
    ovf_text = run.manifest.read_ovf(point.repository.repository_key())
    config = read_ovf(ovf_text)
    # The VM's id now in the engine restored into: an in-place restore there before this one
    # re-created it with a new id (another engine with the same VM, as oVirt DR has, did not).
    vm_engine_id = current_vm_engine_id(point.vm_engine_id, run.manager.pk, settled=False)
    original = targets.existing_vm(engine, vm_engine_id)
    replace = request.replace and original is not None
    if request.replace and original is None:
        run.log(f"The original VM {point.vm_name} is no longer in the engine: it comes back as itself.")
    cluster = _cluster(run, config, original)
    name = _final_name(run, original, replace)
    # Before anything is created: a mapping that names no vNIC profile, or a storage domain
    # the target cluster's data center can't use, must fail the restore while the original
    # VM is still untouched, not after the upload (or after the original was replaced).
    profiles = _nic_profiles(run, config, cluster.data_center_id)
    placement = Placement.for_cluster(engine, cluster)
    jobs = [_disk_job(run, disk, config.disks.get(disk.id), placement) for disk in run.manifest.disks]
    workers_cluster = inventory_cluster(run, cluster.id)
    wake_workers(run, workers_cluster)
    create_disks(run, jobs)
    upload_disks(run, jobs, workers_cluster)
    run.check_cancelled()
    # Beside the original the VM needs a new id; a deleted VM comes back as itself.
    vm_id = vm_engine_id if original is None else str(uuid.uuid4())
    # Engine VM names are short (64 characters): the temporary name must fit too.
    create_name = f"{name[:40]}-restoring-{run.session.pk}" if replace else name
    vm = ovirt.create_vm_from_ovf(engine, ovf=engine_ovf(ovf_text, vm_id=vm_id, name=create_name),
                                  name=create_name, cluster_id=cluster.id, description=run.tag,
                                  new_ids=original is not None)
    run.created.vms.append(vm.id)
    run.remember()
    run.log(f"Created VM {create_name} ({vm.id}) in cluster {cluster.name} from the restore point's OVF.")
    ovirt.wait_vm_status(engine, vm.id, {"down"}, timeout=run.wait_timeout, should_stop=run.should_stop)
    _attach_disks(run, vm.id, jobs, config)
    run.check_cancelled()
    if replace:
        _replace_original(run, original, vm.id, name)
    keep_macs = replace or (original is None and not request.new_macs)
    _add_nics(run, vm.id, config, keep_macs, profiles)
    _give_back_description(run, vm.id, config)
    if request.power_on:
        ovirt.start_vm(engine, vm.id)
        ovirt.wait_vm_status(engine, vm.id, {"up"}, timeout=run.wait_timeout, should_stop=run.should_stop)
        run.log(f"Powered on {name}.")
    where = "in place of the original" if replace else f"as {name}"
    return f"Restored {point.vm_name} ({len(jobs)} disk{'s' if len(jobs) != 1 else ''}) {where}."


def _cluster(run: RestoreRun, config: OvfVm, original):
    if run.request.cluster:
        return find_cluster(run.engine, run.request.cluster)
    if original is not None and original.cluster_id:
        return find_cluster(run.engine, original.cluster_id)
    point_vm = run.point.vm
    if point_vm is not None and point_vm.cluster is not None:
        return find_cluster(run.engine, point_vm.cluster.engine_id)
    if config.cluster_name:
        return find_cluster(run.engine, config.cluster_name)
    raise RestoreError("the VM's cluster is unknown: choose the cluster to restore into")


def _final_name(run: RestoreRun, original, replace: bool) -> str:
    """The restored VM's name; beside the original it must differ (engine names are unique)."""
    wanted = run.request.name or run.point.vm_name
    if replace:
        return original.name
    if ovirt.find_vm(run.engine, wanted) is None:
        return wanted
    if run.request.name:
        raise RestoreError(f"a VM named {wanted!r} exists already: choose another name, or "
                           "replace the original VM")
    for suffix in ["restored", *[f"restored{n}" for n in range(2, 100)]]:
        candidate = f"{wanted}_{suffix}"
        if ovirt.find_vm(run.engine, candidate) is None:
            run.log(f"The VM {wanted} exists: the restored VM is named {candidate}.")
            return candidate
    raise RestoreError(f"no free name for the restored VM {wanted}: give one")


def _disk_job(run: RestoreRun, disk, ovf_disk: OvfDisk | None, placement: Placement) -> DiskJob:
    request = run.request
    chosen = request.disk_storage_domains.get(disk.id) or request.storage_domain
    name = (ovf_disk.alias if ovf_disk else "") or disk.name or disk.id[:8]
    domain_id = (placement.chosen(chosen) if chosen
                 else placement.source(source_domain(run, disk.id, placement), name))
    return disk_job(run, disk, ovf_disk, domain_id, name)


def source_domain(run: RestoreRun, disk_id: str, placement: Placement) -> str:
    """The storage domain the source disk is (or was) on; unknown, the only one ``placement`` can use."""
    existing = targets.existing_disk(run.engine, disk_id)
    if existing is not None and existing.storage_domain_id:
        return existing.storage_domain_id
    from inventory.models import Disk

    row = (Disk.objects.filter(manager=run.manager, engine_id=disk_id)
           .select_related("storage_domain").first())
    if row is not None and row.storage_domain is not None and not row.storage_domain.removed:
        return row.storage_domain.engine_id
    if len(placement.usable) == 1:
        return placement.usable[0].id
    raise RestoreError(f"the storage domain of disk {disk_id} is unknown: choose a storage domain")


def _attach_disks(run: RestoreRun, vm_id: str, jobs: list[DiskJob], config: OvfVm) -> None:
    for job in jobs:
        ovf_disk = config.disks.get(job.source.id) or OvfDisk(disk_id=job.source.id)
        ovirt.attach_disk(run.engine, vm_id, job.disk_id, interface=ovf_disk.interface,
                          bootable=ovf_disk.bootable, active=True)
    run.log(f"Attached {len(jobs)} disk(s) with their original interfaces and boot flags.")


def _replace_original(run: RestoreRun, original, vm_id: str, name: str) -> None:
    """Stop and remove the original VM, then give the restored VM its name.

    The restored VM becomes the one to keep the moment the engine accepts the
    original's removal: a failure after that (the wait for it to go, the
    rename) must not let the cleanup remove the restored VM too. It takes the
    original's place (ReplacedVm) once the original is seen gone.
    """
    engine = run.engine
    # Only a running original is started again after a refusal: the engine refuses to
    # start one that is image_locked or image_illegal.
    was_running = original.status not in ovirt.NOT_RUNNING
    run.log(f"Every disk is restored: stopping and replacing the original VM {original.name}.")
    try:
        ovirt.ensure_vm_down(engine, original.id, timeout=run.wait_timeout)
    except EngineError:
        if was_running:
            _start_quietly(run, original.id)
        raise
    try:
        ovirt.delete_vm(engine, original.id)
    except (EngineUnreachable, EngineTimeout):
        _keep_restored(run)  # the removal may have been accepted: keep both rather than neither
        if not _gone_after_unanswered_removal(run, original, vm_id, name, was_running):
            raise
        # Gone all the same: the restored VM still needs its name, NICs and description.
    except EngineError:
        if was_running:  # refused: the original stays as it was
            _start_quietly(run, original.id)
        raise
    else:
        _keep_restored(run)
        # Timed out, the session fails: the inventory sync that sees the original go links it
        # (jobs.signals, from options.created.kept).
        ovirt.wait_vm_gone(engine, original.id, timeout=run.wait_timeout)
        _took_its_place(run, original, vm_id, name)
    run.log(f"Removed the original VM {original.name} ({original.id}) and its disks.")
    ovirt.rename_vm(engine, vm_id, name)
    run.log(f"The restored VM has a new engine id ({vm_id}); its restore points stay with it, and the "
            "jobs that protect it back it up at their next run (a full: the new VM has no checkpoint).")


def _took_its_place(run: RestoreRun, original, vm_id: str, name: str) -> None:
    # The original is gone: its restore points (keyed by its id) are the restored VM's. Jobs and
    # protection follow the link once this session has ended, when the VM has its name and NICs.
    ReplacedVm.record(run.manager.pk, original.id, vm_id, vm_name=name, session=run.session)


def _gone_after_unanswered_removal(run: RestoreRun, original, vm_id: str, name: str,
                                   was_running: bool) -> bool:
    """The engine didn't answer the original's removal: if the original is gone (True), the
    restored VM took its place; if it is still there, switched off, start it again (the removal
    never came)."""
    try:
        still = ovirt.get_vm(run.engine, original.id)
    except NotFound:
        _took_its_place(run, original, vm_id, name)
        run.session.warn(f"The engine didn't answer the removal of the original VM {original.name}, "
                         f"which is gone all the same: the restored VM ({vm_id}) takes its place.")
        return True
    except EngineError:
        still = None  # still unreachable: nothing known, nothing to start
    run.session.warn(f"The engine didn't answer the removal of the original VM {original.name}: "
                     "the restored VM is kept beside it; check which one to keep.")
    if was_running and still is not None and still.status == "down":
        _start_quietly(run, original.id)
    return False


def _keep_restored(run: RestoreRun) -> None:
    run.past_point_of_no_return = True
    run.remember()


def _start_quietly(run: RestoreRun, vm_id: str) -> None:
    try:
        ovirt.start_vm(run.engine, vm_id)
    except EngineError as exc:
        run.session.warn(f"The original VM could not be started again: {exc}")


def _nic_profiles(run: RestoreRun, config: OvfVm, data_center_id: str | None) -> dict[str, str | None]:
    """The vNIC profile for each network the VM's NICs were on (None: unplugged), in the
    target cluster's data center."""
    by_network = vnic_profiles_by_network(run.engine, data_center_id)
    profiles: dict[str, str | None] = {}
    for network in {nic.network for nic in config.nics}:
        mapped = run.request.networks.get(network)
        if mapped is not None:
            profiles[network] = vnic_profile(run.engine, mapped, data_center_id) if mapped else None
        else:
            profiles[network] = by_network.get(network)
    return profiles


def _add_nics(run: RestoreRun, vm_id: str, config: OvfVm, keep_macs: bool,
              profiles: dict[str, str | None]) -> None:
    for nic in config.nics:
        profile = profiles.get(nic.network)
        if profile is None and nic.network and nic.network not in run.request.networks:
            run.session.warn(f"NIC {nic.name}: the network {nic.network} doesn't exist here; "
                             "the NIC is left without a network.")
        _add_nic(run, vm_id, nic, profile, nic.mac if keep_macs and nic.mac else None)
    unused = set(run.request.networks) - {nic.network for nic in config.nics}
    for network in sorted(unused):
        run.session.warn(f"Network mapping {network} -> {run.request.networks[network] or '(unplugged)'}: "
                         f"the VM had no NIC on network {network}; nothing was mapped.")
    if config.nics:
        macs = "their original MAC addresses" if keep_macs else "new MAC addresses"
        run.log(f"Added {len(config.nics)} NIC(s) with {macs}.")


def _add_nic(run: RestoreRun, vm_id: str, nic, profile: str | None, mac: str | None) -> None:
    try:
        ovirt.add_nic(run.engine, vm_id, name=nic.name, vnic_profile_id=profile, mac=mac,
                      interface=nic.interface)
    except EngineError as exc:
        if mac is None:
            raise
        # The MAC was handed to another VM meanwhile: a new one beats a failed restore.
        run.session.warn(f"NIC {nic.name}: the MAC address {mac} can't be used ({exc}); it gets a new one.")
        ovirt.add_nic(run.engine, vm_id, name=nic.name, vnic_profile_id=profile, interface=nic.interface)


def _give_back_description(run: RestoreRun, vm_id: str, config: OvfVm) -> None:
    # The tag marked the VM as the session's while it could still be removed;
    # once restored, it gets the user's description back.
    ovirt.update_vm(run.engine, vm_id, description=config.description)
