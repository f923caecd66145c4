"""``python -m experiments.polymnist_paper``."""

from . import main

main()
