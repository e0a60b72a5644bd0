"""One module per CLI command; see :mod:`espdsl.cli`. Shared options live in :mod:`.options`."""
