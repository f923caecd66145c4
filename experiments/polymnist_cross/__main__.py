"""``python -m experiments.polymnist_cross``."""

from . import main

main()
