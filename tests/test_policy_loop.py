"""Policies give each round's plan; the loop fires events; handlers do the rest."""

import pytest
import torch
from helpers import THREE_ALPHA, three_player_specs

from multimodal_game.events import Event
from multimodal_game.game import Game
from multimodal_game.handlers import Checkpointer, Evaluator, attach_standard
from multimodal_game.policy import FixedAlpha, OwnPlusPartners, Policy, RoundPlan, Warmup
from multimodal_game.runtime import PlayerLost
from multimodal_game.spaces import Space, categorical, image, real


def _states(game: Game) -> dict:
    return {n: h.state() for n, h in game.runtime.hosts.items()}


def _assert_equal_states(a, b):
    def walk(x, y, path):
        if torch.is_tensor(x):
            assert torch.equal(x, y), path
        elif isinstance(x, dict):
            assert x.keys() == y.keys(), path
            for k in x:
                walk(x[k], y[k], f"{path}/{k}")
        elif isinstance(x, (list, tuple)):
            for k, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{path}/{k}")
        else:
            assert x == y, path

    walk(a["p0"]["player"], b["p0"]["player"], "p0")
    for n in a:
        walk(a[n]["player"], b[n]["player"], n)
        walk(a[n]["rng"], b[n]["rng"], f"{n}/rng")


def _sampling_hook(game, r):
    s = game.players["p0"].sample(5)
    probs = game.players["p1"].infer("label", s)
    return {"sample_sum": float(s["x"].sum()), "probs": float(probs.sum())}


def test_a_sampling_evaluation_hook_leaves_the_trajectory_bit_identical():
    plain = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32)
    plain.run(6)
    hooked = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32)
    attach_standard(hooked, eval_every=1, hooks=[_sampling_hook], progress=False)
    hooked.run(6)
    assert len(hooked.state.history) == 6 and hooked.state.history[0]["sample_sum"] != 0
    _assert_equal_states(_states(plain), _states(hooked))
    # handles are the same kind as on Ray: results come back on the CPU
    assert type(hooked.players["p0"]).__name__ == "PlayerHandle"


def test_evaluation_draws_are_reproducible_and_differ_from_training_draws():
    a = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32)
    b = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32)
    assert torch.equal(a.players["p0"].sample(4)["x"], b.players["p0"].sample(4)["x"])
    host = a.runtime.hosts["p0"]
    with host.rng.active():
        train_draw = host.player.sample(4)["x"]
    assert not torch.equal(train_draw, b.players["p0"].sample(4)["x"])


def _spaces():
    return {
        "a": Space([categorical("label", 3), image("x", 1, 4, 4)]),
        "b": Space([categorical("label", 3), image("x", 1, 4, 4)]),
        "c": Space([categorical("label", 3)]),
        "d": Space([real("y", 2)]),
    }


def test_own_plus_partners_spreads_the_rest_over_players_sharing_a_variable():
    pol = OwnPlusPartners(0.4)
    pol.bind(list(_spaces()), _spaces(), 20)
    a = pol.alpha
    assert torch.allclose(a.sum(1), torch.ones(4, dtype=torch.float64))
    assert torch.allclose(a[0], torch.tensor([0.4, 0.3, 0.3, 0.0], dtype=torch.float64))
    assert a[3, 3] == 1.0  # no partner: all weight on own data
    sized = OwnPlusPartners(0.4, "interface_size")
    sized.bind(list(_spaces()), _spaces(), 20)
    # a shares label + 16 pixels with b, a label only with c
    assert sized.alpha[0, 1] / sized.alpha[0, 2] == pytest.approx(17.0)
    with pytest.raises(ValueError, match="unknown partner weighting 'size'"):
        OwnPlusPartners(0.5, "size")
    with pytest.raises(ValueError, match=r"own_weight must be in \(0, 1\]"):
        OwnPlusPartners(0.0)


def test_warmup_plays_own_data_then_the_inner_plan():
    pol = Warmup(FixedAlpha(THREE_ALPHA), 2)
    spaces = _spaces()
    names = ["a", "b", "c"]
    pol.bind(names, spaces, 30)
    first, later = pol.plan(1), pol.plan(2)
    assert not first.exchanges and all(first.learn[n].own_count == 30 for n in names)
    assert later.exchanges and later.interfaces[("c", "a")] == ("label",)
    assert sum(later.counts("a")) == 30
    assert pol.describe()["warmup_rounds"] == 2


class Alternating(Policy):
    """A time-varying policy: own data on odd rounds, a fixed alpha on even ones."""

    def __init__(self, alpha):
        self.fixed = FixedAlpha(alpha)

    def bind(self, names, spaces, batch_size):
        super().bind(names, spaces, batch_size)
        self.fixed.bind(names, spaces, batch_size)
        self.own = RoundPlan.own_only(self.names, batch_size)

    def plan(self, round):
        return self.own if round % 2 else self.fixed.plan(round)

    @property
    def alpha(self):
        return self.fixed.alpha

    @property
    def interfaces(self):
        return self.fixed.interfaces


def test_a_new_policy_is_one_class_and_the_game_follows_it():
    game = Game.from_specs(three_player_specs(), Alternating(THREE_ALPHA), batch_size=32)
    produced = []
    produce = game.runtime.produce
    game.runtime.produce = lambda req: produced.append(game.state.round) or produce(req)
    game.run(4)
    assert produced == [0, 2]
    acc = game.accounting()
    assert acc["exchange_rounds"] == 2
    per_round = acc["synthetic_per_round"]["sent"]["p0"]
    assert per_round > 0 and acc["synthetic_total"]["sent"]["p0"] == 2 * per_round


def test_handlers_fire_every_k_rounds_and_after_the_last(tmp_path):
    game = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32)
    seen = []
    game.add_handler(Event.ROUND_COMPLETED, lambda g: seen.append(g.state.round), every=3)
    game.add_handler(Event.STARTED, lambda g, rounds: seen.append(("start", rounds)))
    game.add_handler(Event.COMPLETED, lambda g, rounds: seen.append(("end", rounds)))
    saved = Checkpointer(tmp_path / "ck.pt").attach(game, every=4)
    Evaluator().attach(game, every=2)
    game.run(7)
    assert seen == [("start", 7), 3, 6, 7, ("end", 7)]
    assert [h["round"] for h in game.state.history] == [2, 4, 6, 7]
    assert set(game.state.history[0]["loss"]) == {"p0", "p1", "labels"}
    restored = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32)
    restored.load(saved.path)
    assert restored.state.round == 7
    with pytest.raises(ValueError, match="every must be >= 1"):
        game.add_handler(Event.ROUND_COMPLETED, print, every=0)


def test_an_unhandled_lost_player_is_raised_with_the_round():
    game = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32)
    game.run(2)

    def die(requests):
        raise PlayerLost(["p1"])

    game.runtime.learn = die
    with pytest.raises(PlayerLost, match=r"p1 died in round 3"):
        game.run(4)


def test_a_checkpoint_of_another_policy_is_refused(tmp_path):
    from multimodal_game.checkpoint import CheckpointError

    game = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32, warmup_rounds=2)
    game.save(tmp_path / "ck.pt")
    other = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32, warmup_rounds=3)
    with pytest.raises(CheckpointError, match="warmup_rounds 2, not 3"):
        other.load(tmp_path / "ck.pt")


def test_progress_prints_plain_lines_without_a_terminal():
    import io

    from multimodal_game.handlers import Progress

    game = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32)
    stream = io.StringIO()
    Progress("demo", stream=stream, every=2).attach(game)
    game.run(5)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[demo] round 0/5: starting"
    assert [line.split()[2] for line in lines[1:]] == ["2/5", "4/5", "5/5"]
    assert "loss p0=" in lines[-1] and "eta" in lines[-1]


def test_metrics_log_writes_a_line_per_logged_round_and_a_resume_replaces_the_tail(tmp_path):
    import json

    from multimodal_game.handlers import MetricsLog, plot_curves

    path = tmp_path / "metrics.jsonl"
    game = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32)
    Evaluator([lambda g, r: {"twice": 2 * r}]).attach(game, every=2)
    MetricsLog(path, "g").attach(game, every=2)
    game.run(3)
    game.save(tmp_path / "ck.pt")
    game.run(6)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["round"] for r in rows] == [2, 3, 4, 6]
    assert rows[0]["evaluation"] == {"twice": 4} and set(rows[0]["players"]) == {
        "p0",
        "p1",
        "labels",
    }
    resumed = Game.from_specs(three_player_specs(), THREE_ALPHA, batch_size=32)
    resumed.load(tmp_path / "ck.pt")
    MetricsLog(path, "g").attach(resumed, every=2)
    resumed.run(4)
    assert [json.loads(line)["round"] for line in path.read_text().splitlines()] == [2, 3, 4]
    assert plot_curves(path, tmp_path / "curves.png").stat().st_size > 1000


def test_on_top_composition_keeps_a_full_own_batch_and_the_same_weights_per_source():
    from multimodal_game.policy import FixedAlpha, RoundPlan
    from multimodal_game.spaces import Space, categorical

    space = Space([categorical("label", 3)])
    spaces = {n: space for n in "abc"}
    alpha = torch.tensor([[0.5, 0.3, 0.2], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]], dtype=torch.float64)
    shown = RoundPlan.from_alpha(alpha, list("abc"), spaces, 20)
    top = RoundPlan.from_alpha(alpha, list("abc"), spaces, 20, "on_top")
    assert shown.learn["a"].own_count == 10 and top.learn["a"].own_count == 20
    assert [t.count for t in top.learn["a"].transfers] == [12, 8]  # 20 synthetic rows, 3 : 2
    for plan in (shown, top):  # each source's total weight is alpha_ij * B: the loss follows alpha
        lp = plan.learn["a"]
        assert abs(lp.own_count * lp.own_weight - 10.0) < 1e-9
        assert [round(t.count * t.weight, 9) for t in lp.transfers] == [6.0, 4.0]
    assert top.learn["b"].own_count == 20 and top.learn["b"].transfers == ()
    policy = FixedAlpha(alpha, "on_top")
    policy.bind(list("abc"), spaces, 20)
    assert policy.describe()["composition"] == "on_top"  # a checkpoint refuses the other one
