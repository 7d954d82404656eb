"""`python -m custom_components.frequenz_microgrid.simulator`: see `cli.py`."""

from .cli import main

main()
