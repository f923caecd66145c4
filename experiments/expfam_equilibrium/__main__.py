"""``python -m experiments.expfam_equilibrium``."""

from . import main

main()
