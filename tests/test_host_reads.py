"""Host reads of a round: between two checks, the fused in-process game reads nothing back.

On the CPU a CUDA synchronisation cannot be counted, but the reads that would be one can: every
``item()``, ``tolist()``, ``bool()``, ``int()``, ``float()``, ``cpu()`` or ``numpy()`` of a tensor
(benchmarks.host_reads counts them per round and names where they come from)."""

import pytest

from benchmarks.host_reads import count_reads
from benchmarks.round_overhead import build_game


@pytest.mark.parametrize("fuse", [True, False])
def test_between_two_checks_a_fused_round_reads_nothing_back(fuse):
    game = build_game(3, 16, 2, fuse=fuse)
    game.check_every = 5
    game.run(2)  # first steps: optimiser states created, architectures cached
    reads = count_reads(game, 3)  # rounds 3-5: the check is at round 5
    # the check reads every flag of its interval at once (losses and draws): one read
    sites = [site for site, n in reads.items() for _ in range(n)]
    assert len([s for s in sites if "check_finite" in s]) == 1
    others = [s for s in sites if "check_finite" not in s]
    if fuse:
        assert others == [], others
    else:  # the one-by-one Pyro step reads (torch's Adam step counters, Pyro's checks)
        assert len(others) > 3 * 3
