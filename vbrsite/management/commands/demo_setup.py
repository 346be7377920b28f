"""`manage.py demo_setup [--wait SECONDS]`: the simulator as the demo manager, and a demo job.

`make run` runs it in the control runner's Procfile line, before the runner:
it waits for the simulator the Procfile starts, registers and syncs it as the
manager "demo" and adds the unscheduled job "Demo nightly". It always exits 0
(saying why when it did nothing), so the runner after it starts in any case.
`--print-processes` prints the Procfile processes `make run` should start
(the simulator only while the demo is on).
"""

from django.core.management.base import BaseCommand

from vbrsite import demo

PROCESSES = ("web", "control", "worker", "datamover")


class Command(BaseCommand):
    help = "Register and sync the running simulator as the demo manager and add a demo job."

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                            help="wait this long for the simulator to answer (default: don't wait)")
        parser.add_argument("--print-processes", action="store_true",
                            help="print the Procfile processes to start and exit")

    def handle(self, *args, wait: float, print_processes: bool, **options):
        if print_processes:
            wanted, _ = demo.demo_wanted()
            self.stdout.write(" ".join(PROCESSES + (("simulator",) if wanted else ())))
            return
        demo.set_up_demo(self._say, wait=wait)

    def _say(self, line: str) -> None:
        self.stdout.write(f"demo: {line}")
        self.stdout.flush()
