"""Evaluation on the literature's axes: accuracy, pairwise and subset coherence, joint coherence."""

import pytest
import torch
from torch import nn

from multimodal_game.batch import Batch
from multimodal_game.coherence import evaluate


def encode(labels: torch.Tensor) -> torch.Tensor:
    """An image whose brightness is its label."""
    return (labels.float() / 9)[:, None, None, None].expand(-1, 1, 4, 4).clone()


class Judge(nn.Module):
    """Reads the label back from the brightness."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        centres = torch.arange(10) / 9
        return -((x.flatten(1).mean(1, keepdim=True) - centres) ** 2)


class Speaker:
    """Reads its variable's label exactly; generates right (or, ``wrong``, a fixed wrong label)."""

    def __init__(self, name, wrong=False):
        self.name, self.wrong = name, wrong

    def infer(self, label, given):
        read = torch.round(given[self.name].flatten(1).mean(1) * 9).long()
        return nn.functional.one_hot(read, 10).float()

    def sample(self, n, given=None):
        c = given["label"]
        return Batch({self.name: encode((c + 3) % 10 if self.wrong else c)})


def data(n=50):
    y = torch.arange(n) % 10
    return {"label": y, "m0": encode(y), "m1": encode(y), "m2": encode(y)}


def test_perfect_speakers_are_coherent_on_every_axis():
    speakers = {v: Speaker(v) for v in ("m0", "m1", "m2")}
    res = evaluate(speakers, data(), {v: Judge() for v in speakers}, joint_samples=40)
    assert res["accuracy"] == {"m0": 1.0, "m1": 1.0, "m2": 1.0}
    assert set(res["coherence"]) == {f"m{k}->m{j}" for k in range(3) for j in range(3) if k != j}
    assert all(v == 1.0 for v in res["coherence"].values())
    assert res["coherence_from_subset"] == {"1": 1.0, "2": 1.0}
    assert res["joint_coherence"] == res["joint_coherence_true"] == 1.0


def test_a_speaker_that_generates_the_wrong_label_shows_on_the_axes_it_generates():
    speakers = {"m0": Speaker("m0"), "m1": Speaker("m1"), "m2": Speaker("m2", wrong=True)}
    res = evaluate(speakers, data(), {v: Judge() for v in speakers}, joint_samples=40)
    assert res["accuracy"]["m2"] == 1.0  # it still reads right
    assert res["coherence"]["m0->m2"] == res["coherence"]["m1->m2"] == 0.0
    assert res["coherence"]["m2->m0"] == 1.0
    # subsets of one: targets {m1, m2}, {m0, m2}, {m0, m1} -> (0.5 + 0.5 + 1) / 3
    assert res["coherence_from_subset"]["1"] == pytest.approx(2 / 3)
    # subsets of two: targets m2, m1, m0 -> (0 + 1 + 1) / 3
    assert res["coherence_from_subset"]["2"] == pytest.approx(2 / 3)
    assert res["joint_coherence"] == 0.0  # m2's judge never agrees with the others


def test_missing_data_or_judges_are_named():
    speakers = {"m0": Speaker("m0"), "m9": Speaker("m9")}
    with pytest.raises(ValueError, match=r"no data or judge for \['m9'\]"):
        evaluate(speakers, data(), {"m0": Judge()})


class Unsure(Speaker):
    """Reads its label wrong (label + 1) but unsure of it: 0.4 there, 0.6 spread over the rest."""

    def infer(self, label, given):
        read = torch.round(given[self.name].flatten(1).mean(1) * 9).long()
        probs = torch.full((len(read), 10), 0.6 / 9)
        probs[torch.arange(len(read)), (read + 1) % 10] = 0.4
        return probs


class Sure(Speaker):
    def infer(self, label, given):
        return 0.1 / 9 + (0.9 - 0.1 / 9) * super().infer(label, given)


def test_a_subset_reads_the_label_from_all_its_variables_together():
    speakers = {"m0": Unsure("m0"), "m1": Sure("m1"), "m2": Sure("m2")}
    res = evaluate(speakers, data(), {v: Judge() for v in speakers}, joint_samples=40)
    assert res["accuracy"]["m0"] == 0.0
    # {m0, m1} and {m0, m2}: the sure reader outweighs the unsure one, so every pair reads right
    assert res["coherence_from_subset"]["2"] == 1.0


class Counted(Speaker):
    """Counts its reads and draws."""

    def __init__(self, name, wrong=False):
        super().__init__(name, wrong)
        self.reads = self.draws = 0

    def infer(self, label, given):
        self.reads += 1
        return super().infer(label, given)

    def sample(self, n, given=None):
        self.draws += 1
        return super().sample(n, given)


class FeatureJudge(Judge):
    """A judge with a feature space (the brightness itself) and a head; counts its passes."""

    def __init__(self):
        super().__init__()
        self.passes = 0
        self.head = lambda h: -((h[:, :1] - torch.arange(10) / 9) ** 2)

    def features(self, x):
        self.passes += 1
        return torch.cat([x.flatten(1).mean(1, keepdim=True), x.flatten(1)[:, :1]], 1)


def test_one_pass_each_speaker_reads_and_draws_once_and_each_judge_reads_once():
    speakers = {v: Counted(v, wrong=v == "m2") for v in ("m0", "m1", "m2")}
    judges = {v: FeatureJudge() for v in speakers}
    d = data()
    real = {v: judges[v].features(d[v]) for v in speakers}
    for j in judges.values():
        j.passes = 0
    res = evaluate(speakers, d, judges, joint_samples=40, real_features=real)
    assert all(s.reads == 1 and s.draws == 1 for s in speakers.values())
    assert all(j.passes == 1 for j in judges.values())
    assert res["label_fidelity"] == {"m0": 1.0, "m1": 1.0, "m2": 0.0}
    # FID compares distributions: samples that are the real rows (m0), or the same rows under
    # permuted labels (m2's shift of uniform labels), are at 0
    assert res["fid"] == pytest.approx({"m0": 0, "m1": 0, "m2": 0}, abs=1e-6)
    # the batched pass keeps every axis: as in the wrong-speaker case above
    assert res["coherence_from_subset"]["1"] == pytest.approx(2 / 3)
