"""``python -m experiments.domain_alpha``."""

from . import main

main()
