"""``python -m sim`` is the ``modu`` command."""

from sim.cli import main

main()
