"""The fixed judges: trained once per data and recipe, reused, retrained on a change, rebuilt when
corrupt; and the PolyMNIST run reads every seed with the same judges."""

import torch

from multimodal_game.judges import JudgeRecipe, cached_judges, fingerprint

RECIPE = JudgeRecipe(steps=4, batch=16, width=4, features=8)


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    views = {
        v: torch.randint(0, 256, (64, 1, 28, 28), generator=g, dtype=torch.uint8) for v in "ab"
    }
    labels = torch.randint(0, 10, (64,), generator=g)
    scoring = ({v: x[:16] for v, x in views.items()}, labels[:16])
    return views, labels, scoring


def _states(judges):
    return {v: c.state_dict() for v, c in judges.classifiers.items()}


def test_judges_trained_twice_from_one_fingerprint_are_bit_identical(tmp_path):
    views, labels, scoring = _data()
    one = cached_judges(tmp_path / "1", views, labels, RECIPE, scoring, say=print)
    two = cached_judges(tmp_path / "2", views, labels, RECIPE, scoring, say=print)
    assert one.trained and two.trained and one.fingerprint == two.fingerprint
    for v, state in _states(one).items():
        assert all(torch.equal(t, _states(two)[v][k]) for k, t in state.items())
    assert one.accuracy == two.accuracy and set(one.accuracy) == {"a", "b"}


def test_judges_are_reused_and_a_changed_fingerprint_retrains_saying_so(tmp_path):
    views, labels, scoring = _data()
    said: list[str] = []
    first = cached_judges(tmp_path, views, labels, RECIPE, scoring, say=said.append)
    again = cached_judges(tmp_path, views, labels, RECIPE, scoring, say=said.append)
    assert first.trained and not again.trained and said == []
    for v, state in _states(first).items():
        assert all(torch.equal(t, _states(again)[v][k]) for k, t in state.items())
    views["b"][0, 0, 0, 0] ^= 1  # one bit of one training pixel
    changed = cached_judges(tmp_path, views, labels, RECIPE, scoring, say=said.append)
    assert changed.trained and changed.fingerprint != first.fingerprint
    assert len(said) == 1 and "the data or the judges' config changed" in said[0]
    steps = JudgeRecipe(steps=5, batch=16, width=4, features=8)  # the recipe is fingerprinted too
    assert fingerprint(views, labels, steps) != changed.fingerprint


def test_a_corrupt_judge_file_is_named_and_rebuilt(tmp_path):
    views, labels, scoring = _data()
    first = cached_judges(tmp_path, views, labels, RECIPE, scoring)
    raw = bytearray(first.path.read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + 64] = bytes(64)
    first.path.write_bytes(bytes(raw))
    said: list[str] = []
    rebuilt = cached_judges(tmp_path, views, labels, RECIPE, scoring, say=said.append)
    assert rebuilt.trained and len(said) == 1
    assert str(first.path) in said[0] and "training them again" in said[0]
    reread = cached_judges(tmp_path, views, labels, RECIPE, scoring, say=said.append)
    assert not reread.trained and len(said) == 1  # the rebuilt file is sound
    for v, state in _states(first).items():
        assert all(torch.equal(t, _states(reread)[v][k]) for k, t in state.items())


def test_polymnist_judges_rows_are_the_same_for_every_seed_and_no_players():
    from experiments.polymnist_cross.run import judge_rows

    cfg = {"classifier_fraction": 0.2}
    fixed0, rest0 = judge_rows(cfg, 1000, 0)
    fixed3, rest3 = judge_rows(cfg, 1000, 3)
    assert torch.equal(fixed0, fixed3) and len(fixed0) == 200
    for rest in (rest0, rest3):
        assert len(rest) == 800 and not set(rest.tolist()) & set(fixed0.tolist())
    assert not torch.equal(rest0, rest3)  # the players' rows follow the seed
    # at seed 0 the split is the run's own permutation cut in two, as before the judges were fixed
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(fixed0, perm[:200]) and torch.equal(rest0, perm[200:])
