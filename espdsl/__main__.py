"""``python -m espdsl``: the same as the ``espdsl`` command."""
from .cli import main

main()
