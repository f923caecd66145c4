"""Kernels a round launches, for ``polymnist_cross``'s five style players (the demo's), and whether
their fused learning step compiles as one graph.

The count is the profiler's operator count on the CPU: every leaf ``aten::`` operator of one round
(an operator that calls no other), each of which is a kernel launch on a GPU. Three ways of
running the same round (alpha uniform, the profile's players and batch): ``one_by_one`` (each
player's Pyro step), ``fused`` (one vmapped step for the five) and ``fused_compiled`` (that step
through inductor: what is left are the operators around the compiled graph and the graph's own
calls). Rounds are counted after ``--warmup`` rounds (compiles included), as ``round`` (sampling,
exchange, checks and learning) and ``step`` (the learning step alone).

``fullgraph``: the fused step's gradient function (``vmap(grad(objective))``) under
``torch._dynamo.explain`` on a real step's inputs (graphs and graph breaks, with their reasons),
and whether ``torch.compile(..., fullgraph=True)`` compiles and runs it: one graph is what a CUDA
graph can capture.
"""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.common import parser, report
from benchmarks.fused_players import demo_game

VARIANTS = {"one_by_one": (False, False), "fused": (True, False), "fused_compiled": (True, True)}


def leaf_operators(fn) -> int:
    """Leaf ``aten::`` operators that one call of ``fn`` runs (its kernel launches on a GPU)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    return sum(1 for e in events if not any(c.name.startswith("aten::") for c in e.cpu_children))


def _step_only(game):
    """A function that runs one learning step of ``game``'s players on a fixed round's batches."""
    from modalities import m2_fused

    rt = game.runtime
    players = list(rt.local_players.values())
    captured = {}
    original = m2_fused.FusedM2Step.learn

    def capture(self, batches, streams=None):
        captured["args"] = (self, list(batches))
        return original(self, batches, streams)

    m2_fused.FusedM2Step.learn = capture
    try:
        game.step()
    finally:
        m2_fused.FusedM2Step.learn = original
    if "args" in captured:
        step, batches = captured["args"]
        return lambda: step.learn(batches)
    batches = [rt.hosts[n].source.draw(game.batch_size, torch.Generator()) for n in rt.hosts]
    return lambda: [p.learn(b) for p, b in zip(players, batches)]


def count(profile_name: str, warmup: int, variants: dict) -> list[dict]:
    out = []
    for name, (fuse, compile) in variants.items():
        game = demo_game(fuse, profile_name, compile)
        for _ in range(warmup):
            game.step()
        step = _step_only(game)
        step()  # compiled for these shapes already, or compiles now
        out.append(
            {
                "variant": name,
                "round_operators": leaf_operators(game.step),
                "step_operators": leaf_operators(step),
            }
        )
        game.close()
    return out


def fullgraph(profile_name: str) -> dict:
    """Dynamo's view of the fused step's gradient function, on a real step's inputs."""
    from modalities import m2_fused

    game = demo_game(True, profile_name, False)
    game.step()
    seen = {}
    original = m2_fused.FusedM2Step.learn

    def capture(self, batches, streams=None):
        grads = self._grads

        def record(*args):
            seen.setdefault("call", (grads, args))
            return grads(*args)

        self._grads = record
        try:
            return original(self, batches, streams)
        finally:
            self._grads = grads

    m2_fused.FusedM2Step.learn = capture
    try:
        game.step()
    finally:
        m2_fused.FusedM2Step.learn = original
    fn, args = seen["call"]
    import pyro

    with pyro.validation_enabled(False):
        explained = torch._dynamo.explain(fn)(*args)
        torch._dynamo.reset()
        try:
            torch.compile(fn, fullgraph=True)(*args)
            compiles, error = True, None
        except Exception as e:  # noqa: BLE001 - the first break's error is the finding
            compiles, error = False, f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
    game.close()
    return {
        "graphs": explained.graph_count,
        "graph_breaks": explained.graph_break_count,
        "break_reasons": sorted({str(b.reason).splitlines()[0] for b in explained.break_reasons}),
        "compiles_with_fullgraph": compiles,
        "error": error,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = parser("launches", __doc__)
    ap.add_argument("--profile", choices=("quick", "standard"), default="quick")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-compile", action="store_true", help="skip the compiled variant")
    args = ap.parse_args(argv)
    variants = {k: v for k, v in VARIANTS.items() if not (args.no_compile and v[1])}
    runs = count(args.profile, args.warmup, variants)
    return report(f"launches_{args.profile}", args, runs=runs, **fullgraph(args.profile))


if __name__ == "__main__":
    main()
