"""``python -m experiments.mixture_inference``."""

from . import main

main()
