"""vNIC profiles of a cluster's data center (plugin.placement), with the seam patched.

Two data centers, each with its own ovirtmgmt network and profile, staged as the engine's
answers (plugin.engine, autospec): the lookups alone, no engine needed.
"""

from unittest import mock

import pytest

from plugin import placement
from plugin.engine import NetworkInfo, VnicProfileInfo
from plugin.placement import PlacementError

NETWORKS = [NetworkInfo(id="net-a", name="ovirtmgmt", data_center_id="dc-a"),
            NetworkInfo(id="net-b", name="ovirtmgmt", data_center_id="dc-b"),
            NetworkInfo(id="net-b2", name="backend", data_center_id="dc-b")]
PROFILES = [VnicProfileInfo(id="prof-a", name="ovirtmgmt", network_id="net-a"),
            VnicProfileInfo(id="prof-b", name="ovirtmgmt", network_id="net-b"),
            VnicProfileInfo(id="prof-b2", name="backend", network_id="net-b2")]


@pytest.fixture
def engine():
    with mock.patch.multiple("plugin.placement.ovirt", autospec=True, list_networks=mock.DEFAULT,
                             list_vnic_profiles=mock.DEFAULT) as calls:
        calls["list_networks"].return_value = NETWORKS
        calls["list_vnic_profiles"].return_value = PROFILES
        yield object()


def test_a_network_name_picks_the_profile_of_the_target_clusters_data_center(engine):
    assert placement.vnic_profiles_by_network(engine, "dc-a") == {"ovirtmgmt": "prof-a"}
    assert placement.vnic_profiles_by_network(engine, "dc-b") == {"ovirtmgmt": "prof-b", "backend": "prof-b2"}
    assert placement.vnic_profile(engine, "ovirtmgmt", "dc-a") == "prof-a"
    assert placement.vnic_profile(engine, "ovirtmgmt", "dc-b") == "prof-b"


def test_a_profile_of_another_data_center_is_not_found_there(engine):
    with pytest.raises(PlacementError, match="no vNIC profile or network 'backend' in the target cluster's data center"):
        placement.vnic_profile(engine, "backend", "dc-a")
