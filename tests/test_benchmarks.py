"""Benchmark code that carries correctness claims: the hand-written reference loss."""

import torch

from benchmarks.player_step import make_batch, make_player
from benchmarks.player_step import reference_loss_checked as reference_loss


def test_hand_written_loss_equals_the_players_pyro_loss():
    p = make_player(width=2, hidden=16, latent=3)
    for kind in ("labelled", "unlabelled", "mixed"):
        batch = make_batch(24, kind, seed=1)
        batch = batch.__class__(batch.data, batch.present, torch.rand(24) + 0.5)  # uneven weights
        torch.manual_seed(0)
        pyro_loss = p.loss(batch)
        torch.manual_seed(0)
        ref = reference_loss(p, batch)
        assert torch.allclose(pyro_loss, ref, rtol=1e-5, atol=1e-4), (kind, pyro_loss, ref)
        # and the gradients agree too
        g1 = torch.autograd.grad(pyro_loss, list(p.parameters()), allow_unused=True)
        torch.manual_seed(0)
        g2 = torch.autograd.grad(reference_loss(p, batch), list(p.parameters()), allow_unused=True)
        for a, b in zip(g1, g2):
            if a is None or b is None:
                assert a is None and b is None
                continue
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
