"""Image transfers."""

from simulator.engine import Engine
from simulator.routing import Router


def register(router: Router, engine: Engine) -> None:
    """Routes of image transfers."""
