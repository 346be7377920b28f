"""Signals other apps connect to (jobs marks restore points from them).

``repository_verified(sender=Repository, repository, report)``: sent after a
verification; ``report["affected_manifests"]`` lists the manifest ids (restore
points) with a missing or corrupt chunk. The jobs app marks those RestorePoint
rows corrupted and the others ok.
"""

from django.dispatch import Signal

repository_verified = Signal()
