"""Finding what a restore names in the engine (jobs.restore.targets), with the seam patched.

Two data centers, each with its own ovirtmgmt network and profile: the simulator's
seeds have one, so the engine's answers are staged here (plugin.engine, autospec).
"""

from unittest import mock

import pytest

from jobs.restore import targets
from jobs.restore.points import RestoreError
from plugin.engine import NetworkInfo, VnicProfileInfo

NETWORKS = [NetworkInfo(id="net-a", name="ovirtmgmt", data_center_id="dc-a"),
            NetworkInfo(id="net-b", name="ovirtmgmt", data_center_id="dc-b"),
            NetworkInfo(id="net-b2", name="backend", data_center_id="dc-b")]
PROFILES = [VnicProfileInfo(id="prof-a", name="ovirtmgmt", network_id="net-a"),
            VnicProfileInfo(id="prof-b", name="ovirtmgmt", network_id="net-b"),
            VnicProfileInfo(id="prof-b2", name="backend", network_id="net-b2")]


@pytest.fixture
def engine():
    with mock.patch.multiple("jobs.restore.targets.ovirt", autospec=True, list_networks=mock.DEFAULT,
                             list_vnic_profiles=mock.DEFAULT) as calls:
        calls["list_networks"].return_value = NETWORKS
        calls["list_vnic_profiles"].return_value = PROFILES
        yield object()


def test_a_network_name_picks_the_profile_of_the_target_clusters_data_center(engine):
    assert targets.vnic_profiles_by_network(engine, "dc-a") == {"ovirtmgmt": "prof-a"}
    assert targets.vnic_profiles_by_network(engine, "dc-b") == {"ovirtmgmt": "prof-b", "backend": "prof-b2"}
    assert targets.vnic_profile(engine, "ovirtmgmt", "dc-a") == "prof-a"
    assert targets.vnic_profile(engine, "ovirtmgmt", "dc-b") == "prof-b"


def test_a_profile_of_another_data_center_is_not_found_there(engine):
    with pytest.raises(RestoreError, match="no vNIC profile or network 'backend' in the target cluster's data center"):
        targets.vnic_profile(engine, "backend", "dc-a")
