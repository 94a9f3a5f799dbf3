"""``python -m outpost proxy|ldap|radius``: the same as ``ak outpost ...``."""

import sys

from outpost.cli import main

sys.exit(main(sys.argv[1:]))
