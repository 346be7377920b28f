"""The one exception the data plane raises."""


class DataPlaneError(Exception):
    """A qemu tool, qemu-nbd or the imageio daemon failed; the message says what and why."""
