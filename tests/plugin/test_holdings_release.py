"""The backup driver's cleanup (jobs.driver.cleanup.EngineHoldings) against the simulator.

It lives beside the facade tests: it needs an engine and no database.
"""

from jobs.driver.cleanup import EngineHoldings
from plugin import engine as ovirt


def test_a_cancel_that_lands_while_a_transfer_is_finalizing_leaves_the_engine_clean_without_a_warning(conn):
    vm = ovirt.find_vm(conn, "small-vm1")
    disk_id = vm.disk_attachments[0].disk_id
    tag = ovirt.description_tag("holdings")
    backup = ovirt.start_backup(conn, vm.id, [disk_id], description=tag)
    holdings = EngineHoldings(vm_id=vm.id, backup_id=backup.id)
    ovirt.wait_backup_phase(conn, vm.id, backup.id, {"ready"}, timeout=60)
    transfer = ovirt.create_transfer(conn, direction="download", disk_id=disk_id, backup_id=backup.id,
                                     format="raw", description=tag)
    holdings.transfers[transfer.id] = "small-vm1_os"
    ovirt.wait_transfer_ready(conn, transfer.id, timeout=60)
    ovirt.finalize_transfer(conn, transfer.id)  # the session was cancelled while it waited for this one

    said = []
    problems = holdings.release(conn, lambda message, level: said.append((level, message)))
    assert problems == [], said
    assert [level for level, _ in said] == ["info", "info"], said
    assert "was ending already" in said[0][1] and "small-vm1_os" in said[0][1]
    assert ovirt.get_backup(conn, vm.id, backup.id).phase == "succeeded"
    assert all(t.phase in ovirt.TERMINAL_PHASES for t in ovirt.list_transfers(conn) if t.id == transfer.id)
