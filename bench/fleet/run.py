"""Starting and stopping the fleet's responders, on loopback or inside the WAN namespace."""

from __future__ import annotations

import ctypes
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.fleet.responders import raise_open_files
from bench.fleet.spec import FAMILIES, Network
from bench.fleet.wan import in_namespace

ROOT = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Responders:
    """Context manager: one responder process per protocol family, all listening inside it."""

    def __init__(self, hosts: int, network: Network, seed: int, namespace: bool = False) -> None:
        self.hosts, self.network, self.seed, self.namespace = hosts, network, seed, namespace
        self.processes: list[subprocess.Popen[str]] = []
        self.listeners = 0

    def __enter__(self) -> Responders:
        raise_open_files()  # inherited by the children
        try:
            for family in sorted(set(FAMILIES.values())):
                command = [
                    sys.executable, "-m", "bench.fleet.responders", "--family", family,
                    "--hosts", str(self.hosts), "--network", self.network.name,
                    "--seed", str(self.seed),
                ]  # fmt: skip
                self.processes.append(
                    subprocess.Popen(
                        in_namespace(*command) if self.namespace else command,
                        cwd=ROOT,
                        stdout=subprocess.PIPE,
                        text=True,
                        env={**os.environ, "PYTHONPATH": str(ROOT)},
                        preexec_fn=_die_with_parent,
                    )
                )
            self._wait_ready(timeout=120)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        selector = selectors.DefaultSelector()
        for process in self.processes:
            assert process.stdout is not None
            selector.register(process.stdout, selectors.EVENT_READ, process)
        waiting = len(self.processes)
        deadline = time.monotonic() + timeout
        while waiting:
            events = selector.select(max(0.0, deadline - time.monotonic()))
            if not events:
                raise RuntimeError("the fleet's responders did not start in time")
            for key, _ in events:
                line = key.fileobj.readline()  # type: ignore[union-attr]
                if not line.startswith("ready"):
                    raise RuntimeError(f"a responder failed to start: {line!r}")
                self.listeners += int(line.split()[1])
                selector.unregister(key.fileobj)
                waiting -= 1

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
