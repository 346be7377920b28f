"""The simulator's data plane: a real ovirt-imageio daemon, qemu-nbd exports and qemu images.

No Django here; the engine side of the simulator calls DataPlane (see README.md).
"""

from .errors import DataPlaneError
from .plane import DataPlane
from .transfers import TransferEndpoint

__all__ = ["DataPlane", "DataPlaneError", "TransferEndpoint"]
