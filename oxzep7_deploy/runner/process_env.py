"""The environment of a run reaches ansible-playbook through a private socket, never a file.

ansible-runner writes the whole environment of the process it starts into
`artifacts/<ident>/command` (and, given `envvars`, into `env/envvars`): a secret in the
operator's environment (AWS_SECRET_ACCESS_KEY, a vault password) or in `application.env` would
stay on the controller's disk. So ansible-runner is given only what is not secret (the variables
neither the operator nor `application.env` set), and starts this file as a script in front of
ansible-playbook: it fetches the full environment from the controller over a Unix socket in a
private directory (one connection, from the same user, with a one-time token), then execs
ansible-playbook with it. The values exist in the processes' memory only.

Stdlib only: this file runs as a script (`python process_env.py ansible-playbook ...`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

SOCKET_VAR = "OXZEP7_ENV_SOCKET"
TOKEN_VAR = "OXZEP7_ENV_TOKEN"
_ACCEPT_POLL = 0.2


def recorded(env: Mapping[str, str], private: Mapping[str, str]) -> dict[str, str]:
    """The part of `env` that may be written down: what none of `private` set to that value."""
    return {k: v for k, v in env.items() if private.get(k) != v}


@contextmanager
def serve(env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Serve `env` to one run; yields the variables the script needs to fetch it."""
    folder = Path(tempfile.mkdtemp(prefix="oxzep7-env-"))  # 0700
    path = folder / "s"
    token = secrets.token_hex(16)
    payload = json.dumps(dict(env)).encode()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stop = threading.Event()
    try:
        server.bind(str(path))
        server.listen(4)
        server.settimeout(_ACCEPT_POLL)
        thread = threading.Thread(target=_answer, args=(server, token, payload, stop), daemon=True)
        thread.start()
        yield {SOCKET_VAR: str(path), TOKEN_VAR: token}
    finally:
        stop.set()
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


def _answer(server: socket.socket, token: str, payload: bytes, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                        struct.calcsize("3i"))
                _pid, uid, _gid = struct.unpack("3i", creds)
                if uid != os.getuid() or _read_line(conn) != token.encode():
                    continue
                conn.sendall(struct.pack("!Q", len(payload)) + payload)
            except OSError:
                continue
        return  # one run, one start of ansible-playbook: the token is spent


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < 256:
        chunk = conn.recv(256)
        if not chunk:
            break
        data += chunk
    return data.strip()


def fetch(path: str, token: str) -> dict[str, str]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(path)
        conn.sendall(token.encode() + b"\n")
        head = _read_exactly(conn, 8)
        (size,) = struct.unpack("!Q", head)
        doc = json.loads(_read_exactly(conn, size))
    return {str(k): str(v) for k, v in doc.items()}


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = conn.recv(min(1 << 16, size - len(data)))
        if not chunk:
            raise OSError("the controller closed the connection early")
        data += chunk
    return bytes(data)


def main(argv: list[str]) -> int:
    """`process_env.py PROGRAM ARGS...`: exec PROGRAM with the environment the controller serves."""
    if not argv:
        print("oxzep7-deploy: process_env.py needs a program to run", file=sys.stderr)
        return 2
    try:
        env = fetch(os.environ[SOCKET_VAR], os.environ[TOKEN_VAR])
    except (KeyError, OSError, ValueError) as exc:
        print(f"oxzep7-deploy: could not get the run's environment from the controller: {exc}; "
              "run the command again", file=sys.stderr)
        return 4
    env.pop(SOCKET_VAR, None)
    env.pop(TOKEN_VAR, None)
    os.execvpe(argv[0], argv, env)
    return 4  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
