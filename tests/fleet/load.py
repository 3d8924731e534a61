"""A request loop against the fleet's hosts while a deploy or rollback runs.

    with RequestLoop(fleet, port=8000) as loop:
        ctl.json("apply", ...)
    loop.records       # every request: host, start, end (epoch s), ok, error

The loop itself runs on the controller inside the fleet's bridge namespace (where the hosts'
addresses are reachable; `ip netns exec`), as `python tests/fleet/load.py`: THREADS threads per
host, each sending GET / one after another with a TIMEOUT, until stdin closes; it prints every
result as one JSON document. An answer is any HTTP response (a 503 too); a refused connection,
a reset or a timeout is a failed request.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

THREADS = 2
TIMEOUT = 3.0
PAUSE = 0.02


@dataclass(frozen=True)
class Request:
    host: str
    start: float
    end: float
    ok: bool
    error: str = ""


class RequestLoop:
    def __init__(self, fleet: Any, port: int, hosts: list[str] | None = None) -> None:
        self.fleet = fleet
        self.port = port
        self.hosts = hosts or list(fleet.hosts)
        self.records: list[Request] = []
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> RequestLoop:
        targets = {h: self.fleet.address(h) for h in self.hosts}
        self._proc = subprocess.Popen(
            self.fleet.in_bridge([sys.executable, __file__, json.dumps(targets), str(self.port)]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # the loop is running before the command under test starts
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        out, err = self._proc.communicate(input="", timeout=60)
        if self._proc.returncode != 0:
            raise RuntimeError(f"the request loop failed ({self._proc.returncode}): {err[-2000:]}")
        self.records = [Request(**r) for r in json.loads(out)]

    def of(self, host: str) -> list[Request]:
        return sorted((r for r in self.records if r.host == host), key=lambda r: r.start)

    def failed(self, host: str) -> list[Request]:
        return [r for r in self.of(host) if not r.ok]

    def outages(self, host: str) -> list[tuple[float, float]]:
        """Stretches without an answer: from the start of a failed request to the start of the
        next answered one (as the agent's restart gap counts them)."""
        stretches, since = [], None
        for r in self.of(host):
            if not r.ok and since is None:
                since = r.start
            elif r.ok and since is not None:
                stretches.append((since, r.start))
                since = None
        if since is not None:
            stretches.append((since, self.of(host)[-1].end))
        return stretches

    def gap(self, host: str) -> float:
        return sum(end - start for start, end in self.outages(host))


def _loop(host: str, address: str, port: int, stop: threading.Event, out: list[dict[str, Any]]
          ) -> None:
    while not stop.is_set():
        start = time.time()
        conn = http.client.HTTPConnection(address, port, timeout=TIMEOUT)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            out.append({"host": host, "start": start, "end": time.time(), "ok": True})
        except Exception as exc:
            out.append({"host": host, "start": start, "end": time.time(), "ok": False,
                        "error": f"{type(exc).__name__}: {exc}"})
        finally:
            conn.close()
        time.sleep(PAUSE)


def main() -> None:
    targets, port = json.loads(sys.argv[1]), int(sys.argv[2])
    stop = threading.Event()
    out: list[dict[str, Any]] = []
    threads = [threading.Thread(target=_loop, args=(h, a, port, stop, out))
               for h, a in targets.items() for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    sys.stdin.read()  # until the test closes it
    stop.set()
    for thread in threads:
        thread.join()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
