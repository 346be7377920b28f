"""Signals other apps connect to (jobs links VMs restored in place from them).

``inventory_stored(sender=Manager, manager, result)``: sent once a sync has written the
engine's inventory of ``manager`` (not for a stale read it dropped). The jobs app links
the VMs an in-place restore replaced whose original the restore never saw go.
"""

from django.dispatch import Signal

inventory_stored = Signal()
