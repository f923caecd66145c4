"""The game that never hurts: a player's own weight rises when a partner's samples lower its
held-out accuracy, and stays when they do not."""

import torch
from helpers import mixture_data

from multimodal_game import Batch, Game, TensorSource
from multimodal_game.noharm import NoHarmAlpha
from multimodal_game.policy import RoundOutcome
from multimodal_game.spaces import Space, categorical, real

CENTRES = torch.arange(3, dtype=torch.float32)[:, None] * 4.0 * torch.ones(3, 2)


class PlantedPartner:
    """Sends (label, x) pairs drawn from the true clusters; ``shift`` relabels every one of them
    (``shift=1``: the label of the next cluster, always wrong). It does not learn."""

    def __init__(self, shift: int):
        self.space = Space([categorical("label", 3), real("x", 2)])
        self.shift = shift

    def learn(self, batch):
        return {"loss": torch.zeros(())}

    def sample(self, n, given=None):
        c = torch.randint(3, (n,))
        return Batch({"label": (c + self.shift) % 3, "x": CENTRES[c] + torch.randn(n, 2)})

    def infer(self, name, given):
        return torch.full((len(given), 3), 1 / 3)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class ClassMeans:
    """A labelled-data learner over (label, x): per-class means, each step a move of ``lr``
    towards the weighted class means of its batch; infers the nearest mean."""

    def __init__(self, lr: float = 0.2):
        self.space = Space([categorical("label", 3), real("x", 2)])
        self.means, self.lr = torch.zeros(3, 2), lr

    def learn(self, batch):
        seen = batch.observed("label")
        y, x, w = batch["label"][seen], batch["x"][seen], batch.weight[seen]
        for c in range(3):
            wc = w * (y == c)
            if wc.sum() > 0:
                target = (wc[:, None] * x).sum(0) / wc.sum()
                self.means[c] += self.lr * (target - self.means[c])
        return {"loss": torch.zeros(())}

    def sample(self, n, given=None):
        c = torch.randint(3, (n,))
        return Batch({"label": c, "x": self.means[c] + torch.randn(n, 2)})

    def infer(self, name, given):
        return torch.softmax(-(torch.cdist(given["x"], self.means) ** 2) / 2, -1)

    def state_dict(self):
        return {"means": self.means.clone()}

    def load_state_dict(self, state):
        self.means = state["means"].clone()


def play(shift: int) -> NoHarmAlpha:
    torch.manual_seed(0)
    held_out = mixture_data(300, labelled=1.0, seed=9)
    policy = NoHarmAlpha([[0.5, 0.5], [0.0, 1.0]], {"me": held_out}, every=20, start=20)
    players = {"me": ClassMeans(), "partner": PlantedPartner(shift)}
    sources = {
        "me": TensorSource(mixture_data(200, labelled=0.5, seed=1)),
        "partner": TensorSource(mixture_data(10, seed=2)),
    }
    game = Game(players, policy, sources, batch_size=64, seed=0, warmup_rounds=20)
    game.run(200)
    return policy


def test_own_weight_rises_when_a_planted_partner_sends_wrong_labels():
    policy = play(shift=1)
    assert policy.alpha[0, 0] > 0.9, policy.log
    # the reference is the score at the end of the warm-up: it was good, then fell
    first, worst = policy.log[0]["scores"]["me"], min(u["scores"]["me"] for u in policy.log)
    assert first > 0.9 and worst < first - 0.05


def test_own_weight_stays_when_the_partner_is_right():
    policy = play(shift=0)
    assert policy.alpha[0, 0] == 0.5, policy.log
    assert policy.alpha[1].tolist() == [0.0, 1.0]


class Scripted:
    """A handle whose validation score follows a script, one value per call."""

    def __init__(self, scores):
        self.scores = list(scores)

    def call(self, fn, *args):
        return self.scores.pop(0)


def test_the_rule_raises_on_a_drop_and_relaxes_back_at_a_new_best():
    policy = NoHarmAlpha([[0.5, 0.5], [0.5, 0.5]], {"a": None}, every=1, step=0.5)
    space = Space([categorical("label", 3)])
    policy.bind(["a", "b"], {"a": space, "b": space}, batch_size=8)
    handle = {"a": Scripted([0.8, 0.7, 0.9])}
    own = []
    for r in (1, 2, 3):
        policy.observe(RoundOutcome(r, {}, handle))
        own.append(float(policy.alpha[0, 0]))
    assert own == [0.5, 0.75, 0.625]  # reference; hurt: half way to 1; new best: half way back
    assert policy.alpha[0].sum() == 1 and policy.alpha[1].tolist() == [0.5, 0.5]
    restored = NoHarmAlpha([[0.5, 0.5], [0.5, 0.5]], {"a": None}, every=1)
    restored.bind(["a", "b"], {"a": space, "b": space}, batch_size=8)
    restored.load_state_dict(policy.state_dict())
    assert torch.equal(restored.alpha, policy.alpha) and restored.best == {"a": 0.9}
