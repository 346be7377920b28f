"""Tasks of the runners themselves."""

import os
import socket


def runner_identity() -> dict:
    """Which runner ran this task: its cluster (queue) name, host and process.

    Used to check that a queue is served, and by tests of the runners.
    """
    from django_q.conf import Conf

    return {"cluster": Conf.CLUSTER_NAME, "host": socket.gethostname(), "pid": os.getpid()}
