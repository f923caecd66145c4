import json

import pytest
import torch

from experiments import expfam_equilibrium
from experiments._expfam_equilibrium import random_alpha, sampling_tolerance
from multimodal_game.batch import Batch
from multimodal_game.expfam import (
    CategoricalPlayer,
    GaussianPlayer,
    best_response_dynamics,
    data_moments,
    equilibrium,
    spectral_radius,
    stack_moments,
)
from multimodal_game.game import Game
from multimodal_game.sources import TensorSource


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_best_responses_converge_geometrically(seed):
    g = torch.Generator().manual_seed(seed)
    n = 5
    alpha = random_alpha(n, g)
    own = torch.randn(n, 6, generator=g, dtype=torch.float64) * 5
    eq = equilibrium(alpha, own)
    # the fixed point: mu_i = alpha_ii mu_hat_i + sum_j alpha_ij mu_j
    torch.testing.assert_close(
        eq,
        torch.diag(torch.diagonal(alpha)) @ own + (alpha - torch.diag(torch.diagonal(alpha))) @ eq,
    )
    traj = best_response_dynamics(alpha, own, torch.zeros_like(own), 80)
    err = [(m - eq).abs().max().item() for m in traj]
    assert err[-1] < 1e-8
    rho = spectral_radius(alpha)
    assert 0 < rho < 1
    # asymptotic rate: geometric mean of error ratios over rounds 10..25 is no worse than rho
    rate = (err[25] / err[10]) ** (1 / 15)
    assert rate <= rho * 1.02, (rate, rho)


def test_equilibrium_rejects_invalid_alpha():
    with pytest.raises(ValueError, match="sums to"):
        equilibrium([[0.5, 0.2], [0.5, 0.5]], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="2 x 2 but there are 3 players"):
        equilibrium([[0.5, 0.5], [0.5, 0.5]], [[1.0], [2.0], [3.0]])


def test_alpha_identity_keeps_own_moments_and_uniform_pools():
    own = torch.tensor([[0.0], [10.0]], dtype=torch.float64)
    torch.testing.assert_close(equilibrium(torch.eye(2), own), own)
    # with alpha_ii -> small, both players approach the same pooled value
    eq = equilibrium([[0.01, 0.99], [0.99, 0.01]], own)
    assert abs(eq[0, 0] - eq[1, 0]) < 0.2 and abs(eq[0, 0] - 5.0) < 0.1


def test_gaussian_game_with_samples_reaches_closed_form_within_sampling_error():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    n, d, batch = 4, 2, 4096
    alpha = random_alpha(n, g)
    data = [Batch({"x": 2 * k + torch.randn(500, d, generator=g)}) for k in range(n)]
    players = {f"player{k}": GaussianPlayer(d) for k in range(n)}
    own = torch.stack([data_moments(p, b) for p, b in zip(players.values(), data)])
    eq = equilibrium(alpha, own)
    game = Game(players, alpha, [TensorSource(b) for b in data], batch_size=batch, seed=0)
    rounds, avg = 60, 30
    acc = torch.zeros_like(eq)
    for r in range(rounds):
        game.step()
        if r >= rounds - avg:
            acc += stack_moments(list(players.values()))
    err = (acc / avg - eq).abs().max().item()
    tol = sampling_tolerance(
        alpha, eq[:, d:], [game.plan().counts(k) for k in game.names], batch, d, avg
    )
    assert err <= tol, (err, tol)
    # and the dynamics really moved: the initial state was far off
    assert (stack_moments([GaussianPlayer(d) for _ in range(n)]) - eq).abs().max() > 10 * tol


def test_categorical_players_reach_the_closed_form():
    torch.manual_seed(0)
    labels = [torch.tensor([0] * 90 + [1] * 10), torch.tensor([1] * 50 + [2] * 50)]
    players = {"a": CategoricalPlayer(3), "b": CategoricalPlayer(3)}
    alpha = torch.tensor([[0.6, 0.4], [0.3, 0.7]], dtype=torch.float64)
    own = torch.stack(
        [data_moments(p, Batch({"label": y})) for p, y in zip(players.values(), labels)]
    )
    eq = equilibrium(alpha, own)
    sources = {n: TensorSource(Batch({"label": y})) for n, y in zip(players, labels)}
    game = Game(players, alpha, sources, batch_size=20000)
    acc = torch.zeros_like(eq)
    for r in range(40):
        game.step()
        if r >= 20:
            acc += stack_moments(list(players.values()))
    # std of one probability estimate <= 0.5/sqrt(n); averaged over 20 rounds; 5 sigma, / min alpha_ii
    tol = 5 * 0.5 / (20000 * 0.3) ** 0.5 / 0.6 / 20**0.5
    assert (acc / 20 - eq).abs().max().item() <= tol


def test_demo_writes_results_and_plot(tmp_path):
    out = tmp_path / "run"
    res = expfam_equilibrium.main(
        ["--players", "3", "--seed", "1", "--out", str(out), "--quick", "--no-progress"]
    )
    saved = json.loads((out / "results.json").read_text())
    for key in ("alpha", "closed_form", "learned", "max_abs_error", "rounds"):
        assert key in saved
    assert saved["max_abs_error"] == pytest.approx(res["max_abs_error"])
    assert saved["within_tolerance"] is True
    assert saved["exact_error_per_round"][-1] < 1e-8
    assert (out / "convergence.png").stat().st_size > 1000
