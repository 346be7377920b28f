"""Restore: entire VMs, single disks, and disk export from any restore point.

Every restore point is a synthetic full (a manifest naming every 4 MiB block of
every disk, or None for zeros), so a restore never follows a chain:

- ``export.export_disk`` writes one disk of a restore point to a local sparse raw
  or qcow2 file, straight from the data mover (no engine involved);
- ``driver.run_restore_session`` runs a restore session on the control runner:
  it creates disks on the target storage domains, has a worker upload them
  (zero blocks as ``PATCH zero``), and only then creates the VM from the restore
  point's OVF, attaches the disks and NICs, and (for an in-place restore)
  replaces the original VM. Whatever fails, it removes what it created and
  never touches the original VM.
- ``requests`` holds what the wizard and the commands ask for, validated, as it
  is stored in ``Session.options``.
"""
