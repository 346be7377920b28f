"""`make bench`: run every component's benchmark and print one markdown table.

Each component ships `bench/<component>.py` with `run(report)`; a component
whose module is missing or whose dependencies are absent is reported, not hidden.
`python -m bench NAME ...` runs only the named ones.
"""

import importlib
import os
import sys
import traceback

from bench.report import Report

COMPONENTS = ("dataplane", "repositories", "inventory", "workers", "jobs", "restore", "pages")


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vbrsite.settings")
    import django

    django.setup()
    selected = argv or list(COMPONENTS)
    report = Report()
    failed = []
    for name in selected:
        print(f"== {name}", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                print(f"  (no benchmark for {name} yet)")
                continue
            raise
        try:
            module.run(report)
        except Exception:
            traceback.print_exc()
            failed.append(name)
    print()
    print(report.markdown())
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
