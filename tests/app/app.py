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
`release` is the release the process started from (its venv's resolved path), `current` the one
<root>/current points to now: after a switch they differ until the service restarts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import six  # the pinned requirement: proves the venv was built with the app's requirements

CODE = Path(__file__).resolve().parent


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


def make_handler(root: Path, code: Path, started_release: str | None) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "oxzep7-sample/1"

        def do_GET(self) -> None:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="oxzep7 sample app")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--root", type=Path, default=CODE.parent,
                        help="the app root holding releases/ and current (default: code's parent)")
    args = parser.parse_args(argv)
    if os.environ.get("PORT"):  # the preview's port (preview.env), over the unit's --port
        args.port = int(os.environ["PORT"])
    version = platform.python_version()
    if version_listed(version, CODE / "crash-on-python"):
        print(f"refusing to start: Python {version} is listed in {CODE / 'crash-on-python'}",
              file=sys.stderr)
        return 3
    started = release_of(Path(sys.prefix), args.root)
    server = ThreadingHTTPServer((args.bind, args.port), make_handler(args.root, CODE, started))
    print(f"serving on {args.bind}:{args.port}: Python {version}, release {started}",
          file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
