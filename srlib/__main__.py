"""``python -m srlib`` runs the ``srlib`` command."""
from .cli import main

raise SystemExit(main())
