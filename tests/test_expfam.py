import json

import pytest
import torch

from experiments import expfam_equilibrium
from experiments.expfam_equilibrium.run import (
    Z_THRESHOLD,
    make_problem,
    random_alpha,
    standardised_error,
)
from multimodal_game.batch import Batch
from multimodal_game.expfam import (
    CategoricalPlayer,
    GaussianPlayer,
    best_response_dynamics,
    data_moments,
    equilibrium,
    spectral_radius,
    stack_moments,
    time_average_sd,
)
from multimodal_game.game import Game
from multimodal_game.sources import FullSource, TensorSource


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


def _sampled_game_z(monkeypatch=None, shift=0.0, ignore_weights=False, seed=0, own_exact=False):
    """The sampled Gaussian game of ``make_problem`` through the real Game loop: its moments
    averaged over rounds 30-89, minus the closed form of the intended alpha, in units of the SD
    that sampling gives that average (``standardised_error``). ``own_exact``: each player reads
    its 500 own examples in full every round, weighted to count as its share of the batch."""
    cfg = {"players": 4, "dim": 2, "examples": 500}
    alpha, data = make_problem(cfg, seed)
    played = alpha + shift * torch.eye(4, dtype=torch.float64)
    played = played / played.sum(1, keepdim=True)
    players = {f"player{k}": GaussianPlayer(2) for k in range(4)}
    if ignore_weights:  # a broken learner: every row counts alike
        monkeypatch.setattr(
            GaussianPlayer,
            "_weights",
            lambda self, b: torch.full((len(b),), 1.0 / len(b), dtype=torch.float64),
        )
    own = torch.stack([data_moments(p, b) for p, b in zip(players.values(), data)])
    closed = equilibrium(alpha, own)
    torch.manual_seed(seed)
    source = FullSource if own_exact else TensorSource
    game = Game(players, played, [source(b) for b in data], batch_size=4096, seed=seed)
    acc = torch.zeros_like(closed)
    for r in range(90):
        game.step()
        if r >= 30:
            acc += stack_moments(list(players.values()))
    counts = [game.plan().counts(k) for k in game.names]
    return standardised_error(alpha, counts, closed, data, acc / 60, 60, own_exact)


@pytest.mark.parametrize("seed, own_exact", [(0, False), (1, False), (0, True)])
def test_the_sampled_game_meets_the_closed_form_within_its_sampling_sd(seed, own_exact):
    z = _sampled_game_z(seed=seed, own_exact=own_exact)
    assert z.abs().max().item() <= Z_THRESHOLD, z
    # the SD is the right size, not a loose bound: the errors are not all tiny against it
    assert z.abs().max().item() > 0.5, z


def test_the_tight_check_rejects_broken_games(monkeypatch):
    assert _sampled_game_z(shift=0.03).abs().max().item() > 2 * Z_THRESHOLD
    # own rows read in full (500) beside 4096 x (1 - alpha_ii) synthetic ones: only the weights
    # make own data count alpha_ii
    broken = _sampled_game_z(monkeypatch, ignore_weights=True, own_exact=True)
    assert broken.abs().max().item() > 2 * Z_THRESHOLD


def test_the_sd_of_the_time_average_matches_simulation_of_the_linearised_game():
    """``time_average_sd`` against a direct simulation of e' = A e + eps with the stated noise
    (shared producer draws read as prefixes, independent own draws)."""
    g = torch.Generator().manual_seed(0)
    # most weight on partners: shared draws correlate the consumers strongly
    alpha = torch.tensor([[0.2, 0.5, 0.3], [0.4, 0.2, 0.4], [0.5, 0.3, 0.2]], dtype=torch.float64)
    counts = [[2, 4, 2], [4, 2, 4], [1, 4, 3]]
    model = [torch.tensor([[1.0 + j]], dtype=torch.float64) for j in range(3)]
    own = [torch.tensor([[0.5]], dtype=torch.float64)] * 3
    rounds, reps = 100, 4000
    off = alpha - torch.diag(torch.diagonal(alpha))
    e = torch.zeros(reps, 3, dtype=torch.float64)
    total = torch.zeros_like(e)
    for t in range(100 + rounds):
        eps = torch.zeros_like(e)
        for j in range(3):
            draw = torch.randn(reps, 4, generator=g, dtype=torch.float64) * model[j].sqrt()
            mine = torch.randn(reps, 4, generator=g, dtype=torch.float64) * own[j].sqrt()
            for i in range(3):
                rows = draw if i != j else mine
                eps[:, i] += alpha[i, j] * rows[:, : counts[i][j]].mean(1)
        e = e @ off.T + eps
        if t >= 100:
            total += e
    simulated = (total / rounds).std(0)
    sd = time_average_sd(alpha, counts, model, own, rounds)[:, 0]
    # the long-run formula; over 100 rounds at rho(A) = 0.8 it is within a few percent (leaving
    # out the shared draws' correlation would make it 25% too small)
    assert torch.allclose(sd, simulated, rtol=0.08), (sd, simulated)


def test_the_closed_form_equals_an_independent_numpy_solve_of_the_fixed_point():
    import numpy as np

    g = torch.Generator().manual_seed(3)
    alpha = random_alpha(5, g)
    own = torch.randn(5, 6, generator=g, dtype=torch.float64)
    a = alpha.numpy()
    d, off = np.diag(np.diag(a)), a - np.diag(np.diag(a))
    # M = D S + A M, vectorised over the statistics: (I - A (x) I) vec M = vec(D S)
    system = np.eye(30) - np.kron(off, np.eye(6))
    m = np.linalg.solve(system, (d @ own.numpy()).reshape(-1)).reshape(5, 6)
    assert np.allclose(equilibrium(alpha, own).numpy(), m, atol=1e-12)


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
