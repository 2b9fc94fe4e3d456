"""``python -m edgead``."""
from edgead.cli import main

raise SystemExit(main())
