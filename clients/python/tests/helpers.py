"""Test helpers: the real ``herald`` binary on a free port, and a TCP proxy
that can cut every connection (a network failure the broker survives)."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 30.0


def herald_bin() -> Path:
    """``$HERALD_BIN``, else the release build under the cargo target dir."""
    env = os.environ.get("HERALD_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    if not target.is_absolute():
        target = ROOT / target
    return target / "release" / "herald"


_http_flag: Optional[bool] = None


def _supports_http_flag(binary: Path) -> bool:
    """Whether ``serve`` knows ``--http`` (PROTOCOL.md 16.1, not built yet):
    with it, ``--http off`` keeps test brokers from taking a second port."""
    global _http_flag
    if _http_flag is None:
        out = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True, timeout=30)
        _http_flag = "--http " in out.stdout or "--http\n" in out.stdout or "--http <" in out.stdout
    return _http_flag


def broker_env() -> dict:
    """The environment for a test broker: no HERALD_* from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env["HERALD_LOG"] = "info"
    env["NO_COLOR"] = "1"
    return env


class Broker:
    """``herald serve`` as a child process.

    ``port`` 0 picks a free port; :meth:`restart` reuses the port it got,
    so clients can reconnect to the same address.
    """

    def __init__(self, data: Path, *, port: int = 0, extra: Optional[List[str]] = None) -> None:
        self.data = Path(data)
        self.port = port
        self.extra = list(extra or [])
        self.proc: Optional[subprocess.Popen] = None
        self.logs: List[str] = []
        self.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = herald_bin()
        args = [str(binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--data", str(self.data)]
        if _supports_http_flag(binary):
            args += ["--http", "off"]
        args += self.extra
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            proc = subprocess.Popen(
                args,
                env=broker_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            addr = self._wait_listening(proc)
            if addr is not None:
                break
            # The old process's port may take a moment to free after a stop;
            # any other failure is final.
            in_use = any("in use" in line.lower() for line in self.logs[-5:])
            if self.port == 0 or not in_use or time.monotonic() > deadline:
                raise RuntimeError("herald did not start:\n" + "\n".join(self.logs[-30:]))
            time.sleep(0.05)
        self.proc = proc
        self.port = int(addr.rsplit(":", 1)[1])

    def _wait_listening(self, proc: subprocess.Popen) -> Optional[str]:
        found: List[str] = []
        ready = threading.Event()

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.logs.append(line.rstrip("\n"))
                if not found and "listening" in line:
                    for word in line.split():
                        if word.startswith("addr="):
                            found.append(word[5:])
                            ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(START_TIMEOUT_S)
        if found:
            return found[0]
        proc.kill()
        proc.wait()
        return None

    def stop(self, sig: int = signal.SIGTERM) -> Optional[int]:
        """Stops the broker (SIGTERM: a clean stop) and returns its exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def restart(self) -> None:
        """Stops (if running) and starts again on the same data and port."""
        self.stop()
        self.start()

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class Proxy:
    """Forwards 127.0.0.1:<port> to ``target``; :meth:`cut` drops every
    connection at once (both ways), as a failed network would."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.accepted = 0
        self._lock = threading.Lock()
        self._pairs: List[tuple] = []
        self._refusing = False
        self._stop = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self.accepted += 1
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in sel.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self, refuse: bool = False) -> None:
        """Drops every open connection; with ``refuse``, new ones too until
        :meth:`heal`."""
        self._refusing = refuse
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def heal(self) -> None:
        self._refusing = False

    def close(self) -> None:
        self._stop = True
        self.cut()
        self.listener.close()


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Polls ``predicate`` (for state only visible from outside, such as a
    reconnect count); fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def make_certificate(directory: Path):
    """A self-signed certificate for localhost/127.0.0.1 (cert.pem, key.pem)
    made by the ``openssl`` command; None if there is no such command."""
    if not shutil.which("openssl"):
        return None
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return directory / "cert.pem", directory / "key.pem"


def free_port() -> int:
    """A port nothing listens on right now (for flags that need one up front)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
