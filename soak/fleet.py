"""The highseas processes of a soak run: API processes and workers, started, killed, restarted.

Each is a real ``python -m highseas`` process as an operator would run it, with its output in
a log file of the run's directory.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

HIGHSEAS = [sys.executable, "-m", "highseas"]
_STOP_SECONDS = 15.0


class Process:
    """One highseas process; ``start`` again after a kill starts a new one with the same role."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], root: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.root = root
        self.generation = 0
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.root / f"{self.name}.{self.generation}.log"

    def start(self) -> None:
        self.generation += 1
        with self.log.open("wb") as sink:
            self.popen = subprocess.Popen(
                [*HIGHSEAS, *self.args],
                env=self.env,
                cwd=self.root,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no release; its jobs wait for their leases to expire."""
        if self.popen is not None and self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def terminate(self) -> None:
        if self.popen is not None and self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> None:
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()

    def logged(self, text: str) -> bool:
        with contextlib.suppress(FileNotFoundError):
            return text in self.log.read_text(errors="replace")
        return False


class Api(Process):
    def __init__(self, index: int, port: int, env: dict[str, str], root: Path) -> None:
        self.port = port
        super().__init__(
            f"api{index}", ["serve", "--no-worker", "--port", str(self.port)], env, root
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False


class Worker(Process):
    def __init__(self, index: int, env: dict[str, str], root: Path, concurrency: int) -> None:
        super().__init__(f"worker{index}", ["worker", "--concurrency", str(concurrency)], env, root)

    def ready(self) -> bool:
        return self.logged("started, polling queues")


class Fleet:
    def __init__(
        self, env: dict[str, str], root: Path, *, ports: list[int], workers: int, concurrency: int
    ) -> None:
        self.root = root
        self.apis = [Api(i, port, env, root) for i, port in enumerate(ports)]
        self.workers = [Worker(i, env, root, concurrency) for i in range(workers)]

    @property
    def processes(self) -> list[Process]:
        return [*self.apis, *self.workers]

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting: list[Api | Worker] = [*self.apis, *self.workers]
        while waiting:
            for process in list(waiting):
                if not process.alive():
                    raise RuntimeError(f"{process.name} exited at start:\n{tail(process.log)}")
                if process.ready():
                    waiting.remove(process)
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout:.0f} s: {[p.name for p in waiting]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM everyone (workers drain), then SIGKILL whoever is still there."""
        for process in self.processes:
            process.terminate()
        deadline = time.monotonic() + _STOP_SECONDS
        for process in self.processes:
            process.wait_stopped(deadline)

    def logs(self) -> list[Path]:
        return sorted(self.root.glob("*.log"))


def tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(FileNotFoundError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
