"""Data sets of the project: MNIST (bundled 10k or full), Fashion-MNIST, PolyMNIST, and shards."""
