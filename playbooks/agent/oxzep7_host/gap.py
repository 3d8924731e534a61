"""The restart gap: how long the app did not answer while it moved to another release.

While the services restart (or reload) and until the health checks have passed, a thread sends
a request to http://127.0.0.1:<application.port>/ every PROBE_INTERVAL seconds, one at a time,
each with a PROBE_TIMEOUT. Any HTTP response is an answer (a 503 too: the server is there);
a refused connection, a reset or no response within the timeout is not. The gap is the sum of
the unanswered stretches, each from the start of its first unanswered probe to the start of the
next answered one (or the end of the window). The window ends when the checks have passed and
the last probe was answered (at most SETTLE seconds later: a release without checks of its own,
such as one adopted from before oxzep7, is measured until the app answers again). 0 when every
probe was answered: a socket-activated app (systemd holds the listening socket, connections
wait in its backlog) or a graceful reload. Without application.port nothing is measured (None).
"""

import http.client
import threading
import time

PROBE_INTERVAL = 0.05
PROBE_TIMEOUT = 2.0
SETTLE = 30.0


def probe_port(port, timeout=PROBE_TIMEOUT):
    """Whether anything answered an HTTP request on 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"User-Agent": "oxzep7-host gap probe"})
        conn.getresponse().read(65536)
        return True
    except Exception:
        return False
    finally:
        conn.close()


class GapProbe:
    """`with GapProbe(port) as gap: restart(); health()` then `gap.report()`."""

    def __init__(self, port):
        self.port = int(port) if port else None
        self.samples = []  # (started, answered)
        self.started = self.ended = None
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self.started = time.time()
        if self.port:
            self._thread = threading.Thread(target=self._run, name="gap-probe", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type, *exc):
        if self._thread is not None and exc_type is None:
            # healthy is not enough where the release has no checks of its own (an adopted
            # one): the window lasts until the app answers again, SETTLE seconds at most
            deadline = time.time() + SETTLE
            while time.time() < deadline and not (self.samples and self.samples[-1][1]):
                time.sleep(PROBE_INTERVAL)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(PROBE_TIMEOUT + 1)
        self.ended = time.time()
        return False

    def _run(self):
        while not self._stop.is_set():
            at = time.time()
            self.samples.append((at, probe_port(self.port)))
            self._stop.wait(max(0.0, PROBE_INTERVAL - (time.time() - at)))

    def gap(self):
        if not self.port:
            return None
        total, down_since = 0.0, None
        for at, answered in list(self.samples):
            if not answered and down_since is None:
                down_since = at
            elif answered and down_since is not None:
                total += at - down_since
                down_since = None
        if down_since is not None:
            total += (self.ended or time.time()) - down_since
        return round(total, 3)

    def report(self):
        """What the host's report says of it: the gap, and the window it was measured in
        (epoch seconds, the host's clock)."""
        return {
            "restart_gap_s": self.gap(),
            "restart_window": [round(self.started or 0, 3), round(self.ended or 0, 3)],
            "gap_probes": len(self.samples),
            "gap_unanswered": sum(1 for _, answered in self.samples if not answered),
        }
