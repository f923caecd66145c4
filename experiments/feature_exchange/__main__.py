"""``python -m experiments.feature_exchange``."""

from . import main

main()
