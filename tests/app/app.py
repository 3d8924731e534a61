"""The sample application: a small HTTP service whose /healthz says which Python and release serve it.

Run as `<root>/current/venv/bin/python <code>/app.py --port 8000 --root <root>`. The variable
PORT, when set, wins over --port: oxzep7-deploy's preview runs the unit's own ExecStart with
PORT set to preview.port.

    GET /healthz  200 {"status": "ok", "python": "3.11.2", "release": "initial", ...}
                  503 {"status": "unhealthy", "reasons": [...], ...} when
                    - the file <root>/unhealthy exists (the on-demand switch), or
                    - the running Python's version is listed in <code>/fail-on-python
                      ("3.13.5" or "3.13", one per line), so only a new interpreter is unhealthy
    GET /         200 a line of text

It refuses to start at all when its version is listed in <code>/crash-on-python.

Tracebacks while healthy (the watch's drill): when <code>/log-tracebacks lists the release the
process started from (one per line; `*` every release, `new` every release but `initial`), it
writes a Python traceback to stderr (the unit's journal) on every request and TICKS times a
second, and still answers 200.

Serving while it moves:
- socket activation: started by systemd with LISTEN_FDS=1 (a .socket unit), it serves on fd 3
  instead of binding the port; the socket outlives a restart, so connections made meanwhile wait
  in its backlog instead of being refused;
- graceful reload: on SIGHUP it stops accepting, lets requests in flight finish, and re-executes
  itself from <root>/current (so from the release `current` points to now), handing its
  listening socket to the new process as fd 3: no connection is refused. `--reload PID` (the
  unit's ExecReload) sends the HUP and waits until the new release answers.
`release` is the release the process started from (its venv's resolved path), `current` the one
<root>/current points to now: after a switch they differ until the service restarts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import six  # the pinned requirement: proves the venv was built with the app's requirements

CODE = Path(__file__).resolve().parent
TICKS = 4  # tracebacks a second while <code>/log-tracebacks lists the release
TICKER = "log-tracebacks"  # the ticker thread's name: drain does not wait for it


def release_of(path: Path, root: Path) -> str | None:
    """The release id that `path` lies in (`<root>/releases/<id>/...`), after resolving links."""
    try:
        rel = path.resolve().relative_to((root / "releases").resolve())
    except (ValueError, OSError):
        return None
    return rel.parts[0] if rel.parts else None


def listed_versions(path: Path) -> list[str]:
    """Versions listed in a file, one per line; `#` starts a comment; no file, no versions."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [v for v in (line.split("#", 1)[0].strip() for line in lines) if v]


def version_listed(version: str, path: Path) -> bool:
    """Whether `version` (e.g. 3.13.5) matches an entry of `path`: `3.13.5` or `3.13`."""
    return any(version == v or version.startswith(v + ".") for v in listed_versions(path))


def health(root: Path, code: Path, started_release: str | None) -> tuple[int, dict[str, object]]:
    """The /healthz answer: HTTP status and JSON body."""
    version = platform.python_version()
    reasons = []
    switch = root / "unhealthy"
    if switch.exists():
        note = switch.read_text().strip() if switch.is_file() else ""
        reasons.append(f"{switch} exists" + (f": {note}" if note else ""))
    if version_listed(version, code / "fail-on-python"):
        reasons.append(f"Python {version} is listed in {code / 'fail-on-python'}")
    body: dict[str, object] = {
        "status": "unhealthy" if reasons else "ok",
        "python": version,
        "release": started_release,
        "current": release_of(root / "current", root),
        "executable": sys.executable,
        "six": six.__version__,
        "pid": os.getpid(),
    }
    if reasons:
        body["reasons"] = reasons
    return (503 if reasons else 200), body


def logs_tracebacks(code: Path, release: str | None) -> bool:
    """Whether <code>/log-tracebacks lists `release` (`*`: every one; `new`: all but initial)."""
    listed = listed_versions(code / "log-tracebacks")
    return "*" in listed or release in listed or ("new" in listed and release != "initial")


def log_traceback(where: str) -> None:
    """A real traceback on stderr, the way an app's unhandled error shows in the journal."""
    try:
        raise RuntimeError(f"sample error ({where}; <code>/log-tracebacks lists this release)")
    except RuntimeError:
        import traceback

        sys.stderr.write(traceback.format_exc())
        sys.stderr.flush()


def tick_tracebacks(code: Path, release: str | None) -> None:
    while True:
        if logs_tracebacks(code, release):
            log_traceback("tick")
        time.sleep(1 / TICKS)


def make_handler(root: Path, code: Path, started_release: str | None) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "oxzep7-sample/1"

        def do_GET(self) -> None:
            if logs_tracebacks(code, started_release):
                log_traceback(f"GET {self.path}")
            if self.path.split("?", 1)[0] == "/healthz":
                status, body = health(root, code, started_release)
                self._send(status, "application/json", json.dumps(body) + "\n")
            elif self.path == "/":
                self._send(200, "text/plain", f"oxzep7 sample app on Python "
                                              f"{platform.python_version()}\n")
            else:
                self._send(404, "text/plain", "not found\n")

        def _send(self, status: int, ctype: str, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a health poll every second would flood the journal

    return Handler


LISTEN_FD = 3  # SD_LISTEN_FDS_START


def inherited_socket() -> socket.socket | None:
    """The listening socket systemd (or this app's own re-exec) passed as fd 3, if any."""
    if os.environ.get("LISTEN_FDS") != "1":
        return None
    if os.environ.get("LISTEN_PID") not in (None, str(os.getpid())):
        return None
    return socket.socket(fileno=LISTEN_FD)


def make_server(args: argparse.Namespace, handler: type) -> ThreadingHTTPServer:
    sock = inherited_socket()
    if sock is None:
        return ThreadingHTTPServer((args.bind, args.port), handler)
    server = ThreadingHTTPServer(sock.getsockname()[:2], handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    return server


def drain(timeout: float = 10) -> None:
    """Let the requests in flight finish (their handler threads end), for at most `timeout`."""
    deadline = time.monotonic() + timeout
    def busy() -> bool:  # handler threads (daemons, as ThreadingHTTPServer makes them); not the
        # ticker of log-tracebacks
        return any(t is not threading.main_thread() and t.name != TICKER
                   for t in threading.enumerate())

    while busy() and time.monotonic() < deadline:
        time.sleep(0.01)


def reexec(server: ThreadingHTTPServer, args: argparse.Namespace) -> None:
    """Become the release <root>/current points to, keeping the listening socket as fd 3."""
    drain()  # requests in flight finish first
    fd = server.socket.fileno()
    if fd != LISTEN_FD:
        os.dup2(fd, LISTEN_FD)
    os.set_inheritable(LISTEN_FD, True)
    os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
    python = str(args.root / "current" / "venv" / "bin" / "python")
    os.execv(python, [python, str(CODE / "app.py"), *sys.argv[1:]])


def send_reload(pid: int, args: argparse.Namespace, timeout: float = 30) -> int:
    """ExecReload: HUP the app, then wait until the release `current` points to answers."""
    want = release_of(args.root / "current", args.root)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        try:
            body = json.loads(opener.open(f"http://127.0.0.1:{args.port}/healthz", timeout=2).read())
        except Exception as exc:  # a 503 is an HTTPError: read its body too
            body = json.loads(exc.read()) if hasattr(exc, "read") else {}
        if body.get("release") == want:
            return 0
        time.sleep(0.05)
    print(f"reload: release {want} did not answer within {timeout} s", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="oxzep7 sample app")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--root", type=Path, default=CODE.parent,
                        help="the app root holding releases/ and current (default: code's parent)")
    parser.add_argument("--reload", type=int, metavar="PID",
                        help="send the running app (PID) a graceful reload and wait for it")
    args = parser.parse_args(argv)
    if os.environ.get("PORT"):  # the preview's port (preview.env), over the unit's --port
        args.port = int(os.environ["PORT"])
    if args.reload:
        return send_reload(args.reload, args)
    version = platform.python_version()
    if version_listed(version, CODE / "crash-on-python"):
        print(f"refusing to start: Python {version} is listed in {CODE / 'crash-on-python'}",
              file=sys.stderr)
        return 3
    started = release_of(Path(sys.prefix), args.root)
    server = make_server(args, make_handler(args.root, CODE, started))
    threading.Thread(target=tick_tracebacks, args=(CODE, started), daemon=True, name=TICKER).start()
    reloading = threading.Event()

    def stop_serving(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()  # not from serve_forever's thread

    def on_hup(signum: int, frame: object) -> None:
        reloading.set()
        stop_serving(signum, frame)

    signal.signal(signal.SIGHUP, on_hup)
    # a stop (systemctl stop/restart) is graceful too: no new connection is accepted (with socket
    # activation they wait in systemd's socket for the next process), those accepted are answered
    signal.signal(signal.SIGTERM, stop_serving)
    inherited = " (inherited socket)" if os.environ.get("LISTEN_FDS") == "1" else ""
    print(f"serving on {server.server_address}{inherited}: Python {version}, release {started}",
          file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.05)
    if reloading.is_set():
        reexec(server, args)
    drain()
    return 0


if __name__ == "__main__":
    sys.exit(main())
