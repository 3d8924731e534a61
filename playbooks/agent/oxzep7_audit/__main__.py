"""`python3 -B -m oxzep7_audit` (what the zipapp runs): one JSON document on stdout."""

import sys

sys.dont_write_bytecode = True  # before the probe is imported: read-only means no .pyc either

from .cli import main  # noqa: E402

sys.exit(main())
