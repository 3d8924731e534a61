"""The command line: options as base64 JSON in, one JSON document out, whatever happens."""

import argparse
import base64
import json
import sys

from .base import DESCRIPTION, PROBE_FORMAT
from .report import audit


def main(argv=None):
    parser = argparse.ArgumentParser(prog="oxzep7-audit", description=DESCRIPTION)
    parser.add_argument("--config-b64", default="", help="options, as base64 of a JSON object")
    args = parser.parse_args(argv)
    config = json.loads(base64.b64decode(args.config_b64).decode("utf-8")) if args.config_b64 else {}
    try:
        document = audit(config)
    except Exception as exc:  # one JSON document whatever happens: the controller reports it
        document = {"probe": PROBE_FORMAT, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(document) + "\n")
        return 1
    sys.stdout.write(json.dumps(document) + "\n")
    return 0
