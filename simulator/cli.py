"""`python -m simulator serve|guest-write|disk-image|fault ...`."""

import argparse
import base64
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

from simulator.faults import KINDS

SUFFIXES = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def size(text: str) -> int:
    """Bytes from '4096', '64K', '1M', '2G'."""
    text = text.strip().lower().removesuffix("ib").removesuffix("b")
    try:
        if text and text[-1] in SUFFIXES:
            return int(float(text[:-1]) * SUFFIXES[text[-1]])
        return int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size; write e.g. 4096, 64K, 1M") \
            from error


def _state_option(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--state", type=Path, required=required,
                        help="the simulator's state directory")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m simulator",
                                     description="A stand-in oVirt engine with a real imageio "
                                                 "data plane.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the simulator")
    _state_option(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    serve.add_argument("--seed", default="demo", help="demo, small, two-dc or inventory:N")
    serve.add_argument("--password", help="admin@internal's password (random on first start)")
    serve.add_argument("--delay", type=float, default=0.5,
                       help="seconds that long operations (snapshots, transfers) take")

    write = commands.add_parser("guest-write", help="write into a VM's disk as its guest")
    _state_option(write)
    write.add_argument("--vm", required=True, help="the VM's name")
    write.add_argument("--disk", help="the disk's alias (default: the VM's first disk)")
    write.add_argument("--offset", type=size, required=True)
    write.add_argument("--length", type=size, required=True)
    write.add_argument("--seed", type=int, default=0)

    image = commands.add_parser("disk-image", help="print the path and format of a disk's image")
    _state_option(image)
    image.add_argument("--disk", required=True, help="the disk's id")
    image.add_argument("--json", action="store_true", help="print JSON with the whole chain")

    _fault_parser(commands)
    return parser


def _fault_parser(commands) -> None:
    fault = commands.add_parser("fault", help="inject, list and clear faults")
    _state_option(fault, required=False)
    actions = fault.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="arm a fault")
    add.add_argument("kind", choices=KINDS)
    add.add_argument("--count", type=int, help="how many calls/entities it catches "
                                               "(default: all until cleared)")
    add.add_argument("--match", default="*",
                     help="for fail: 'METHOD segment', e.g. 'POST snapshots', 'GET vms'")
    add.add_argument("--status", type=int, default=409)
    add.add_argument("--reason", default="Operation Failed")
    add.add_argument("--detail", default="[Injected fault]")
    add.add_argument("--bytes", type=size, help="for imageio-drop: cut after this many bytes")
    add.add_argument("--seconds", type=float, help="for slow: delay of every answer")
    listing = actions.add_parser("list", help="show armed faults")
    clear = actions.add_parser("clear", help="clear one fault or all")
    clear.add_argument("id", nargs="?", help="the fault's id (default: all)")
    checkpoint = actions.add_parser("checkpoint", help="break a checkpoint as a host crash would")
    checkpoint.add_argument("--vm", required=True, help="the VM's name")
    checkpoint.add_argument("--checkpoint", required=True, help="the checkpoint's id")
    checkpoint.add_argument("--action", choices=("invalidate", "remove-bitmap"),
                            default="invalidate")
    for sub in (add, listing, clear, checkpoint):
        sub.add_argument("--state", type=Path, default=argparse.SUPPRESS,
                         help="the simulator's state directory")


class AdminClient:
    """Talks to the running simulator's admin endpoint, found through DIR/server.json."""

    def __init__(self, state_dir: Path):
        info_path = state_dir / "server.json"
        if not info_path.exists():
            raise SystemExit(f"No simulator is running on {state_dir} (no server.json); start "
                             f"it with: python -m simulator serve --state {state_dir}")
        self.info = json.loads(info_path.read_text())
        self.context = ssl.create_default_context(cafile=self.info["ca_file"])
        base = f"https://{self.info['host']}:{self.info['port']}"
        self.base = base + "/simulator/admin/"
        credentials = f"{self.info['username']}:{self.info['password']}".encode()
        self.auth = "Basic " + base64.b64encode(credentials).decode()

    def call(self, method: str, path: str, body: dict | None = None):
        """One admin call; SystemExit with the server's message when it fails."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": self.auth, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=120) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            message = json.loads(error.read() or b"{}").get("error", error.reason)
            raise SystemExit(f"simulator: {message}") from error
        except urllib.error.URLError as error:
            raise SystemExit(f"simulator: cannot reach {self.base}: {error.reason}") from error


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m simulator`."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from simulator.app import serve
        from simulator.seeds import parse_seed

        try:
            parse_seed(args.seed)
        except ValueError as error:
            raise SystemExit(str(error)) from error
        return serve(args.state, args.host, args.port, args.seed, args.password, args.delay)
    if getattr(args, "state", None) is None:
        raise SystemExit("--state DIR is required (the directory the simulator serves from).")
    client = AdminClient(args.state)
    if args.command == "guest-write":
        result = client.call("POST", "guest-write", {"vm": args.vm, "disk": args.disk,
                                                     "offset": args.offset, "length": args.length,
                                                     "seed": args.seed})
        print(f"wrote {result['length']} bytes at {result['offset']} into disk {result['disk']}")
    elif args.command == "disk-image":
        result = client.call("GET", f"disk-image?disk={args.disk}")
        print(json.dumps(result) if args.json else f"{result['path']} {result['format']}")
    else:
        _fault_command(client, args)
    return 0


def _fault_command(client: AdminClient, args) -> None:
    if args.action == "add":
        spec = {k: getattr(args, k) for k in ("kind", "count", "match", "status", "reason",
                                              "detail", "bytes", "seconds")}
        print(json.dumps(client.call("POST", "faults", spec)))
    elif args.action == "list":
        result = client.call("GET", "faults")
        for fault in result["faults"]:
            print(json.dumps(fault))
        for fault in result.get("dataplane", []):
            print(json.dumps({"dataplane": fault}, default=str))
    elif args.action == "clear":
        result = client.call("DELETE", f"faults/{args.id}" if args.id else "faults")
        print(f"cleared {len(result['removed'])} fault(s)")
    else:
        result = client.call("POST", "checkpoints", {"vm": args.vm, "checkpoint": args.checkpoint,
                                                     "action": args.action})
        print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
