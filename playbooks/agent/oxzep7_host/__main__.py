"""`python3 -m oxzep7_host` (what the zipapp runs): one subcommand, one JSON document on stdout."""

import sys

from .cli import main

sys.exit(main())
