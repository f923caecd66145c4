"""The Ray runtime: same results as in process, faults, proxies. One local Ray for the module."""

import os
import signal

import pytest
import torch

ray = pytest.importorskip("ray")

from helpers import THREE_ALPHA, build_image_host, three_player_specs  # noqa: E402

from multimodal_game.batch import Batch  # noqa: E402
from multimodal_game.game import Game  # noqa: E402
from multimodal_game.handlers import attach_standard  # noqa: E402
from multimodal_game.runtime import PlayerLost  # noqa: E402
from multimodal_game.runtime.ray_runtime import init_ray  # noqa: E402

THREADS = torch.get_num_threads()


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    started = init_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


def game(runtime: str, group: tuple[str, ...] = ()) -> Game:
    """The three-player game; on Ray the players ``group`` share one actor."""
    opts = {"threads": THREADS} if runtime == "ray" else {}
    specs = grouped(three_player_specs(), "site", group)
    return Game.from_specs(specs, THREE_ALPHA, runtime=runtime, runtime_options=opts, batch_size=32)


def grouped(specs, group: str, names) -> list:
    """``specs`` with the players ``names`` in one group (one actor)."""
    import dataclasses

    return [dataclasses.replace(s, group=group) if s.name in names else s for s in specs]


def _tensors(obj, prefix=""):
    if torch.is_tensor(obj):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}/{k}")


def params(g: Game) -> dict[str, dict[str, torch.Tensor]]:
    """Every tensor of every player's state (parameters and optimiser moments)."""
    return {n: dict(_tensors(s["player"])) for n, s in g.runtime.state().items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for n in a:
        for k in a[n]:
            assert torch.equal(a[n][k], b[n][k]), (n, k)


@pytest.fixture(scope="module")
def reference():
    """Parameters after 6 rounds in process: what every Ray run below must reproduce exactly."""
    g = game("inprocess")
    g.run(6)
    return params(g)


def test_ray_matches_inprocess_bit_exactly(reference):
    g = game("ray")
    try:
        assert g.runtime.pid("p0") != os.getpid() != g.runtime.pid("p1")
        g.run(6)
        assert_same(params(g), reference)
        # evaluation through proxies: sample/infer run in the actor, results come back on the CPU
        s = g.players["p0"].sample(5)
        assert s.names == ("label", "x") and s["x"].device.type == "cpu"
        probs = g.players["p1"].infer("label", Batch({"x": torch.zeros(4, 2)}))
        assert probs.shape == (4, 3) and torch.allclose(probs.sum(-1), torch.ones(4))
        acc = g.accounting()
        assert acc["rounds"] == 6
        sent, recv = acc["synthetic_per_round"]["sent"], acc["synthetic_per_round"]["received"]
        assert sum(sent.values()) == sum(recv.values()) > 0
        assert acc["synthetic_total"]["sent"]["p0"] == 6 * sent["p0"]
    finally:
        g.close()


def test_a_group_of_players_shares_one_actor_and_matches_inprocess_bit_exactly(reference):
    g = game("ray", group=("p0", "p1"))
    try:
        assert len(g.runtime.actors) == 2
        assert g.runtime.pid("p0") == g.runtime.pid("p1") != g.runtime.pid("labels")
        g.run(6)
        assert_same(params(g), reference)
    finally:
        g.close()


def _image_game(runtime: str, fuse: bool, group: str | None = None) -> Game:
    from functools import partial

    from multimodal_game.host import HostSpec

    specs = [HostSpec(f"p{i}", partial(build_image_host, i), 10 + i, num_cpus=0.5) for i in (0, 1)]
    if group:
        specs = grouped(specs, group, ("p0", "p1"))
    opts = {"fuse_players": fuse, **({"threads": THREADS} if runtime == "ray" else {})}
    return Game.from_specs(
        specs, [[0.6, 0.4], [0.4, 0.6]], runtime=runtime, runtime_options=opts, batch_size=16
    )


def test_same_architecture_players_of_a_group_fuse_in_their_actor_as_in_process():
    states = {}
    for name, runtime, fuse, group in (
        ("fused", "inprocess", True, None),
        ("one_by_one", "inprocess", False, None),
        ("ray_group", "ray", True, "site"),
        ("ray_alone", "ray", True, None),
    ):
        g = _image_game(runtime, fuse, group)
        try:
            fused = g.runtime.fusion_groups()
            assert fused == ([["p0", "p1"]] if name in ("fused", "ray_group") else []), name
            g.run(3)
            states[name] = params(g)
        finally:
            g.close()
    assert_same(states["ray_group"], states["fused"])
    assert_same(states["ray_alone"], states["one_by_one"])
    differ = [
        k
        for k, t in states["fused"]["p0"].items()
        if not torch.equal(t, states["one_by_one"]["p0"][k])
    ]
    assert differ  # the fused step ran: it equals the one-by-one steps only up to rounding


def _kill(name: str, at_round: int):
    done = []

    def hook(g: Game, r: int):
        if r == at_round and not done:
            done.append(r)
            os.kill(g.runtime.pid(name), signal.SIGKILL)

    return hook


@pytest.mark.parametrize(
    "group, lost",
    [((), ["p1"]), (("p0", "p1"), ["p0", "p1"])],
    ids=["alone", "a_group_is_lost_and_restarted_together"],
)
def test_killed_player_is_restarted_from_checkpoint_and_result_unchanged(
    tmp_path, reference, group, lost
):
    import json

    g = game("ray", group=group)
    try:
        match = f"{', '.join(lost)}.*round 4; restarted, replaying from round 2"
        with pytest.warns(UserWarning, match=match):
            attach_standard(
                g,
                hooks=[_kill("p1", 3)],
                eval_every=1,
                checkpoint_every=2,
                checkpoint_path=tmp_path / "ck.pt",
                progress=False,
                max_restarts=1,
                metrics_path=tmp_path / "metrics.jsonl",
                log_every=1,
            )
            g.run(6)
        assert [e["event"] for e in g.state.events] == ["lost", "restarted"]
        assert g.state.events[0]["players"] == lost
        assert_same(params(g), reference)
        # the replayed rounds 3 and 4 replace their first lines: one line per round
        lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["round"] for line in lines] == [1, 2, 3, 4, 5, 6]
    finally:
        g.close()


def test_killed_player_without_restarts_stops_cleanly_and_resume_continues(tmp_path, reference):
    ck = tmp_path / "ck.pt"
    g = game("ray")
    try:
        with pytest.raises(PlayerLost, match=r"p0.*in round 4.*ck\.pt") as err:
            attach_standard(
                g,
                hooks=[_kill("p0", 3)],
                eval_every=1,
                checkpoint_every=2,
                checkpoint_path=ck,
                progress=False,
            )
            g.run(6)
        assert err.value.names == ("p0",)
    finally:
        g.close()
    # the checkpoint of round 2 is intact; a new game resumes from it and ends where it should
    resumed = game("ray")
    try:
        resumed.load(ck)
        assert resumed.state.round == 2
        resumed.run(6)
        assert_same(params(resumed), reference)
    finally:
        resumed.close()


def test_a_player_killed_during_a_checkpoint_is_restarted_like_any_other(tmp_path, reference):
    # the hook (evaluation) runs just before the checkpoint of round 4 and kills p1: the
    # checkpoint's state gathering finds it gone
    g = game("ray")
    try:
        with pytest.warns(UserWarning, match=r"p1.*after round 4 \(checkpoint or evaluation\)"):
            attach_standard(
                g,
                hooks=[_kill("p1", 4)],
                eval_every=1,
                checkpoint_every=2,
                checkpoint_path=tmp_path / "ck.pt",
                progress=False,
                max_restarts=1,
            )
            g.run(6)
        assert [e["event"] for e in g.state.events] == ["lost", "restarted"]
        assert_same(params(g), reference)
    finally:
        g.close()
    g = game("ray")
    try:
        with pytest.raises(PlayerLost, match=r"p0.*after round 4 \(checkpoint.*ck2\.pt"):
            attach_standard(
                g,
                hooks=[_kill("p0", 4)],
                eval_every=1,
                checkpoint_every=2,
                checkpoint_path=tmp_path / "ck2.pt",
                progress=False,
            )
            g.run(6)
    finally:
        g.close()


def test_experiment_runs_on_ray_with_the_same_result(tmp_path, capsys):
    from experiments import expfam_equilibrium

    cfg = tmp_path / "small.toml"
    cfg.write_text("rounds = 6\nbatch_size = 256\nexamples = 200\n")
    common = ["--config", str(cfg), "--players", "3", "--no-progress"]
    local = expfam_equilibrium.main([*common, "--out", str(tmp_path / "a")])
    remote = expfam_equilibrium.main([*common, "--out", str(tmp_path / "b"), "--runtime", "ray"])
    assert remote["max_abs_error"] == local["max_abs_error"]
    import json
    import os

    # threads left at 0: every core in process, one per Ray actor, each recorded as it ran
    threads = [json.loads((tmp_path / d / "config.json").read_text())["threads"] for d in "ab"]
    assert threads == [os.cpu_count(), 1]
    # so the default config is not bit-comparable across runtimes, and both runs say so: the
    # Ray run in one line, both in config.json
    differ = [
        json.loads((tmp_path / d / "config.json").read_text())["runtime_difference"] for d in "ab"
    ]
    if os.cpu_count() > 1:
        assert all("threads = 0 is" in d and "not bit-comparable" in d for d in differ)
        notes = [x for x in capsys.readouterr().err.splitlines() if x.startswith("note: ")]
        assert notes == [f"note: {differ[1]}"]


def test_the_command_line_gives_the_same_checkpoint_on_both_runtimes(tmp_path):
    """Same config and seed from the command line: bit-identical players in process and on Ray
    once the config names the thread count (by default every core in process and one per Ray
    actor) and one-by-one steps (a fused step equals them only up to float rounding)."""
    import json

    from experiments import mnist_alpha
    from multimodal_game.checkpoint import load_checkpoint

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        "alphas = [0.5]\nrounds = 3\nwarmup_rounds = 1\nbatch_size = 16\nsamples = 20\n"
        "threads = 1\nfuse_players = false\nclassifier_steps = 2\n[player.variables.0]\nwidth = 2\n[player]\nhidden = 8\nlatent = 2\n"
    )
    states = {}
    for runtime in ("inprocess", "ray"):
        out = tmp_path / runtime
        mnist_alpha.main(
            ["--config", str(cfg), "--out", str(out), "--no-progress", "--runtime", runtime]
        )
        written = json.loads((out / "config.json").read_text())
        assert written["threads"] == 1 and written["runtime_difference"] == ""
        hosts = load_checkpoint(out / "alpha0.50.ckpt")["hosts"]
        states[runtime] = {n: dict(_tensors(h["player"])) for n, h in hosts.items()}
    assert_same(states["ray"], states["inprocess"])


def test_a_plugin_recipe_named_in_the_config_is_imported_by_every_ray_worker(tmp_path):
    import json

    from experiments import mnist_alpha

    cfg = tmp_path / "plugin.toml"
    cfg.write_text(
        'plugins = ["plugin_image"]\nalphas = [0.5]\nrounds = 2\nwarmup_rounds = 1\n'
        "batch_size = 8\nsamples = 20\nclassifier_steps = 2\n"
        "[player.variables.0]\nwidth = 2\n[player]\nhidden = 8\nlatent = 2\n"
        "[player_overrides.default]\n"
        'variables = [{name = "x", recipe = "plugin_image", width = 2}]\n'
    )
    out = tmp_path / "run"
    res = mnist_alpha.main(
        ["--config", str(cfg), "--out", str(out), "--no-progress", "--runtime", "ray"]
    )
    assert res["rows"] and json.loads((out / "config.json").read_text())["plugins"] == [
        "plugin_image"
    ]


def test_asking_for_more_cpus_than_the_cluster_has_is_an_error():
    import dataclasses

    specs = [dataclasses.replace(s, num_cpus=2.0) for s in three_player_specs()]
    with pytest.raises(ValueError, match=r"ask for 6 CPUs .* the Ray cluster has 2 CPUs"):
        Game.from_specs(specs, THREE_ALPHA, runtime="ray")


def _sampling_hook(g, r):
    s = g.players["p0"].sample(5)
    return {"x": float(s["x"].sum()), "p": float(g.players["p1"].infer("label", s).sum())}


def test_a_sampling_evaluation_hook_leaves_the_ray_trajectory_bit_identical(reference):
    g = game("ray")
    try:
        attach_standard(g, eval_every=1, hooks=[_sampling_hook], progress=False)
        g.run(6)
        assert len(g.state.history) == 6
        assert_same(params(g), reference)
        # the handles are the same kind as in process, and evaluation draws agree there too
        local = game("inprocess")
        attach_standard(local, eval_every=1, hooks=[_sampling_hook], progress=False)
        local.run(6)
        assert type(g.players["p0"]) is type(local.players["p0"])
        assert [h["x"] for h in g.state.history] == [h["x"] for h in local.state.history]
    finally:
        g.close()


def test_the_local_ray_has_no_dashboard_and_authenticates_every_connection():
    """What the private local Ray promises. (Ray 2.60 cannot be confined to loopback: it swaps a
    loopback node address for the host's reachable one; see the README's Ray section.)"""
    import socket

    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", 8265)) != 0  # no dashboard
    assert is_token_auth_enabled()
    assert os.environ.get("RAY_USAGE_STATS_ENABLED") == "0"


def test_statistics_exchange_is_the_same_on_ray(tmp_path):
    """Only summaries travel between actors; the result equals the in-process game exactly."""
    from functools import partial

    from experiments.expfam_equilibrium.run import build_host, make_problem
    from multimodal_game.host import HostSpec
    from multimodal_game.statistics import Statistics

    cfg = {"players": 3, "dim": 2, "examples": 200}
    alpha, _ = make_problem(cfg, 0)
    specs = [
        HostSpec(f"player{k}", partial(build_host, f"player{k}", cfg, 0, True), k) for k in range(3)
    ]
    moments = {}
    for runtime in ("inprocess", "ray"):
        g = Game.from_specs(
            specs, alpha, runtime=runtime, batch_size=256,
            exchange="statistics", statistics=Statistics(draw="sigma"),
        )  # fmt: skip
        try:
            g.run(5)
            moments[runtime] = torch.stack(
                [g.players[n].call(lambda p: p.moments()) for n in g.names]
            )
            assert g.accounting()["exchange_modes"]["player0->player1"] == "statistics"
        finally:
            g.close()
    assert torch.equal(moments["ray"], moments["inprocess"])
