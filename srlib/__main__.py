"""``python -m srlib`` runs the ``srlib`` command."""
from .cli import run

run()
