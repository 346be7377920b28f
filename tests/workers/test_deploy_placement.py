"""Workers deployed into another data center: the NIC and the boot disk stay in the worker's.

The simulator is seeded with two data centers (two-dc), each with its own ovirtmgmt:
Default (cluster Default, data1, data2, backend) and Remote (cluster Remote, remote1).
It refuses, as oVirt does, a NIC on another data center's network and a disk of another
data center's storage domain, but only once the VM is made.
"""

import pytest
from django.core.management import call_command

from inventory.models import Cluster, StorageDomain
from plugin import engine as ovirt
from workers import deployment
from workers.choices import WorkerState
from workers.models import Worker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from simulator.testing import running_simulator

    with running_simulator(tmp_path_factory.mktemp("sim") / "state", seed="two-dc", delays=0.1) as handle:
        yield handle


def remote_ovirtmgmt(engine) -> str:
    remote = next(dc.id for dc in ovirt.list_data_centers(engine) if dc.name == "Remote")
    network = next(n.id for n in ovirt.list_networks(engine)
                   if n.name == "ovirtmgmt" and n.data_center_id == remote)
    return next(p.id for p in ovirt.list_vnic_profiles(engine) if p.network_id == network)


def test_a_worker_deployed_into_remote_gets_remotes_ovirtmgmt(manager, runner_settings):
    runner_settings.VBR_WORKER_LAUNCHER = "cloud-init"  # no runner to wait for: the VM is what counts

    call_command("deploy_worker", "remote", "--cluster", "Remote", "--network", "ovirtmgmt",
                 "--storage-domain", "remote1", "--no-wait")

    worker = Worker.objects.get(name="remote")
    assert worker.state == WorkerState.STARTING, worker.last_error
    with ovirt.connect(manager.credentials()) as engine:
        vm = ovirt.get_vm(engine, worker.engine_vm_id)
        assert [nic.vnic_profile_id for nic in vm.nics] == [remote_ovirtmgmt(engine)]
        boot = ovirt.get_disk(engine, vm.disk_attachments[0].disk_id)
    assert boot.storage_domain_id == StorageDomain.objects.get(manager=manager, name="remote1").engine_id


def engine_state(manager) -> tuple[set, set]:
    with ovirt.connect(manager.credentials()) as engine:
        return {vm.name for vm in ovirt.list_vms(engine)}, {d.id for d in ovirt.list_disks(engine)}


def test_a_deployment_into_remote_fails_before_anything_is_made_on_what_only_default_has(manager, new_worker):
    # As when the inventory is stale: the rows pass the form, the engine's data center doesn't.
    remote = Cluster.objects.get(manager=manager, name="Remote")
    before = engine_state(manager)

    data1 = StorageDomain.objects.get(manager=manager, name="data1")
    with pytest.raises(deployment.DeploymentError, match=r"storage domain 'data1' is not attached to data center "
                                                         r"'Remote', where cluster 'Remote' is: .*usable there: remote1"):
        deployment.deploy(new_worker("on-data1", cluster=remote, storage_domain=data1), wait=False)
    with pytest.raises(deployment.DeploymentError, match="no vNIC profile or network 'backend' in the target "
                                                         r"cluster's data center \(profiles: ovirtmgmt\)"):
        deployment.deploy(new_worker("on-backend", cluster=remote, vnic_profile="backend"), wait=False)

    assert engine_state(manager) == before
    assert set(Worker.objects.values_list("state", flat=True)) == {WorkerState.FAILED}
