"""A TCP relay in front of the imageio daemon that cuts connections after N bytes.

TLS passes through untouched (the client still verifies the daemon's certificate), so to
the client this is a network that drops a connection mid-transfer.
"""

import select
import socket
import struct
import threading

_BUFFER = 256 * 1024


class DropRelay:
    """Listen on (host, free port); relay each connection to target; reset it after nbytes.

    count limits how many connections get cut (None: every one that reaches nbytes).
    """

    def __init__(self, host: str, target: tuple[str, int], nbytes: int, count: int | None = None):
        self.target = target
        self.nbytes = nbytes
        self.remaining = count
        self.drops = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server((host, 0))
        self.address = self._listener.getsockname()[:2]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._accepter = threading.Thread(target=self._accept, daemon=True,
                                          name=f"drop-relay-{self.address[1]}")
        self._accepter.start()

    def close(self) -> None:
        """Stop listening and end every relayed connection."""
        self._stopping.set()
        try:
            # Wakes accept() so the thread can see the flag.
            socket.create_connection(self.address, timeout=1).close()
        except OSError:
            pass
        self._accepter.join(5)
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                _close(sock, reset=True)
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._stopping.is_set():
                client.close()
                return
            thread = threading.Thread(target=self._relay, args=(client,), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _relay(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            _close(client, reset=True)
            return
        server.settimeout(None)
        with self._lock:
            self._sockets.update((client, server))
        try:
            self._pump(client, server)
        finally:
            with self._lock:
                self._sockets.difference_update((client, server))

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        carried = 0
        while not self._stopping.is_set():
            try:
                readable, _, _ = select.select(list(peers), [], [], 0.5)
            except (OSError, ValueError):
                # close() reset the sockets under us.
                return
            for sock in readable:
                try:
                    data = sock.recv(_BUFFER)
                except OSError:
                    data = b""
                if not data:
                    _close(client)
                    _close(server)
                    return
                if self._should_cut(carried, len(data)):
                    # Send only what fits under the limit, then reset both ends.
                    try:
                        peers[sock].sendall(data[: max(0, self.nbytes - carried)])
                    except OSError:
                        pass
                    _close(client, reset=True)
                    _close(server, reset=True)
                    return
                carried += len(data)
                try:
                    peers[sock].sendall(data)
                except OSError:
                    _close(client)
                    _close(server)
                    return

    def _should_cut(self, carried: int, incoming: int) -> bool:
        if carried + incoming <= self.nbytes:
            return False
        with self._lock:
            if self.remaining is not None:
                if self.remaining <= 0:
                    return False
                self.remaining -= 1
            self.drops += 1
            return True


def _close(sock: socket.socket, reset: bool = False) -> None:
    try:
        if reset:
            # Linger 0: close sends RST, as a broken network path looks to the peer.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass
