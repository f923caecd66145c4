"""``python -m experiments.fashion_ssl``."""

from . import main

main()
