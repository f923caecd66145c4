"""``precision = "bf16"``: the encoders and decoders under bfloat16 autocast, the rest float32."""

import pytest
import torch
from helpers import fused_against_one_by_one, three_batches

from benchmarks.player_step import make_batch, make_player
from modalities import build_player
from modalities.m2_fused import FusedM2Step
from multimodal_game.errors import ConfigError

BOTH = {"consistency_weight": 1000.0, "aux_weight": 1000.0, "enumerate_top": 2}


def _conv_dtypes(player) -> list[torch.dtype]:
    """Records the output dtype of every convolution of ``player`` (forward hooks)."""
    seen = []
    for m in player.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
            m.register_forward_hook(lambda mod, i, out: seen.append(out.dtype))
    return seen


def test_bf16_runs_the_networks_in_bfloat16_and_returns_float32():
    fp32, bf16 = make_player(4, 32, 4, seed=0), make_player(4, 32, 4, seed=0, precision="bf16")
    assert fp32.precision == "fp32" and bf16.precision == "bf16"
    seen32, seen16 = _conv_dtypes(fp32), _conv_dtypes(bf16)
    batch = make_batch(16, "mixed")
    torch.manual_seed(1)
    loss32 = fp32.learn(batch)["loss"]
    torch.manual_seed(1)
    loss16 = bf16.learn(batch)["loss"]
    assert seen32 and set(seen32) == {torch.float32}
    assert seen16 and set(seen16) == {torch.bfloat16}
    # the likelihood and the optimiser see float32: the outputs, losses and parameters
    z, c = torch.zeros(3, 4), torch.arange(3)
    assert bf16.decode(c, z)["m0"].out.dtype == torch.float32
    assert loss16.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    # the same model up to bf16 rounding: close, not equal
    assert loss16 != loss32
    assert torch.isclose(loss16, loss32, rtol=2e-2), (loss16, loss32)


def test_a_fused_bf16_step_matches_the_one_by_one_bf16_steps():
    players = [make_player(4, 32, 4, seed=i, precision="bf16", **BOTH) for i in range(3)]
    # bf16 rounds the batched and the single convolutions apart
    _, fused_streams, own_streams = fused_against_one_by_one(
        players, three_batches(), 3, 1e-2, 1e-2
    )
    assert all(torch.equal(a.cpu, b.cpu) for a, b in zip(fused_streams, own_streams))


def test_players_that_differ_in_precision_only_are_not_fused_together():
    fp32, bf16 = make_player(4, 32, 4), make_player(4, 32, 4, precision="bf16")
    assert fp32.fusion_key() != bf16.fusion_key()
    assert fp32.sample_fusion_key() != bf16.sample_fusion_key()
    with pytest.raises(ValueError, match="different architectures"):
        FusedM2Step([fp32, bf16])
    # equal precisions fuse
    assert bf16.fusion_key() == make_player(4, 32, 4, seed=1, precision="bf16").fusion_key()


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(ConfigError, match="'precision': Input should be 'fp32' or 'bf16'"):
        build_player({"variables": [{"name": "x", "recipe": "image"}], "precision": "fp16"})
