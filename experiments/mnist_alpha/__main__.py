"""``python -m experiments.mnist_alpha``."""

from . import main

main()
