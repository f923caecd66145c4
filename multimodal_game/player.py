"""The Player protocol and ``PyroPlayer``, the base class of players whose model is written in Pyro."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import pyro
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from pyro.nn import PyroModule

from .batch import Batch
from .spaces import Space

# Pyro keeps parameters in one process-wide store: two players that registered modules under the same
# name would silently share tensors. Module-local parameters keep every player's parameters inside its
# own module; players never call pyro.param / pyro.module, and train with their own torch optimiser.
pyro.settings.set(module_local_params=True)
# A batch in which every label is observed has nothing to enumerate; that is expected here.
warnings.filterwarnings("ignore", message="TraceEnum_ELBO found no sample sites configured")


@runtime_checkable
class Player(Protocol):
    """What the game needs from a player: a black box that learns from data and samples itself."""

    space: Space

    def learn(self, batch: Batch) -> Mapping[str, torch.Tensor]:
        """One learning step on a (weighted, partially observed) batch; returns detached statistics."""

    def sample(self, n: int, given: Batch | None = None) -> Batch:
        """``n`` joint samples of the player's observable variables (conditioned on ``given``)."""

    def infer(self, name: str, given: Batch) -> torch.Tensor:
        """Posterior of variable ``name`` given the observed variables of ``given``.

        For a categorical variable: class probabilities of shape ``(n, k)``.
        """

    # Optional (density estimators): ``log_prob(batch, samples=K) -> (n,)``, an estimate of
    # log p of each example's present variables; see ``M2Player.log_prob`` for the bound.

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> Any: ...


def check_samples(samples: int) -> int:
    """The number of importance samples of a ``log_prob`` call (a named error below 1)."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"log_prob needs samples >= 1 (an integer), got {samples!r}")
    return samples


@contextlib.contextmanager
def weighted_plate(name: str, weight: torch.Tensor, dim: int = -1) -> Iterator[pyro.plate]:
    """A data plate whose examples count with per-example ``weight`` in the ELBO.

    Tensor scales are allowed here because missing labels are enumerated in the *guide*: Pyro's
    TraceEnum_ELBO only requires scalar scales for sites enumerated in the model.
    """
    positive = weight > 0
    # Pyro's scale must be positive: examples of weight 0 are masked out instead.
    with (
        pyro.plate(name, weight.shape[0], dim=dim) as plate,
        poutine.scale(scale=torch.where(positive, weight, torch.ones_like(weight))),
        poutine.mask(mask=positive),
    ):
        yield plate


class PyroPlayer(PyroModule):
    """Base class: subclasses write ``model(batch)`` and ``guide(batch)`` in Pyro.

    Learning is one step on the sum of named ``objectives``: -ELBO by ``TraceEnum_ELBO`` (exact
    enumeration of missing categorical variables, which guides mark with
    ``infer={"enumerate": "parallel"}``) and any terms a subclass adds (e.g. an auxiliary classifier
    loss), with a plain ``torch.optim`` optimiser over this module's own parameters. With
    ``learning="wake_sleep"`` the guide is also trained on the player's own samples: the sleep
    phase of wake-sleep, a term ``-log q(hidden | observables)`` on dreamt examples (the project's
    rule; the paper authors' symmetric equilibrium learning is ``M2Player``'s
    ``learning="symmetric_equilibrium"``).
    """

    learning_rules = ("elbo", "wake_sleep")
    # learn() checks each batch's values against the space and value ranges (a named DataError
    # for, e.g., 0..255 images). A PlayerHost checks its private source once when it is built and
    # turns this off: the per-step check would read the batch on the host (a device sync).
    check_inputs = True

    def __init__(
        self,
        space: Space,
        lr: float = 1e-3,
        optimizer: str = "adam",
        learning: str = "elbo",
        sleep_batch: int | None = None,
    ):
        super().__init__()
        if learning == "symmetric":
            raise ValueError(
                "learning rule 'symmetric' was renamed 'wake_sleep' (ELBO plus a sleep-phase guide "
                "term, the project's rule); the paper authors' rule is 'symmetric_equilibrium' "
                "(M2 players)"
            )
        if learning not in self.learning_rules:
            raise ValueError(
                f"unknown learning rule {learning!r}; expected one of {self.learning_rules}"
            )
        if optimizer not in ("adam", "sgd", "adamw"):
            raise ValueError(f"unknown optimizer {optimizer!r}; expected adam, adamw or sgd")
        self.space = space
        self.lr = float(lr)
        self.optimizer_name = optimizer
        self.learning = learning
        self.sleep_batch = sleep_batch
        self._elbo = TraceEnum_ELBO(max_plate_nesting=1)
        self._optim: torch.optim.Optimizer | None = None

    # -- to be written by subclasses --------------------------------------------------------------
    def model(self, batch: Batch | None, *args: Any, n: int | None = None) -> Any:
        """The generative model. ``batch=None``: sample ``n`` examples observing nothing, along the
        sites of unobserved examples, and return the sampled observables (the sleep phase)."""
        raise NotImplementedError(f"{type(self).__name__} must define model()")

    def guide(self, batch: Batch, *args: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define guide()")

    def sample(self, n: int, given: Batch | None = None) -> Batch:
        raise NotImplementedError(f"{type(self).__name__} must define sample()")

    def infer(self, name: str, given: Batch) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define infer()")

    # -- learning ---------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def optim(self) -> torch.optim.Optimizer:
        # Built lazily so that subclasses can create their networks after calling __init__.
        if self._optim is None:
            params = [p for p in self.parameters() if p.requires_grad]
            if self.optimizer_name == "adam":
                self._optim = torch.optim.Adam(params, lr=self.lr)
            elif self.optimizer_name == "adamw":
                self._optim = torch.optim.AdamW(params, lr=self.lr)
            else:
                self._optim = torch.optim.SGD(params, lr=self.lr, momentum=0.9)
        return self._optim

    def elbo(self, batch: Batch, *args: Any) -> torch.Tensor:
        """-ELBO of ``model`` and ``guide`` on ``batch`` (summed over weighted examples); ``args``
        go to both (e.g. encoder features computed once per step). A non-finite loss is the
        game's to report (``Diverged`` names the player and the round), so Pyro's own NaN and
        Inf warnings, which would come first and say less, are silenced here."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Encountered (NaN|[+]/-Inf)")
            return self._elbo.differentiable_loss(self.model, self.guide, batch, *args)

    def objectives(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The named terms of one step's loss, each summed over the batch's weighted examples.
        Subclasses add their own terms (e.g. an auxiliary classifier loss) after ``elbo``."""
        return {"elbo": self.elbo(batch), **self.sleep_terms(batch)}

    def sleep_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``{"sleep": ...}`` under ``learning="wake_sleep"``, else nothing."""
        if self.learning != "wake_sleep":
            return {}
        return {"sleep": self.sleep_loss(self.sleep_batch or len(batch))}

    def loss(self, batch: Batch) -> torch.Tensor:
        """The step's loss: -ELBO plus the other objectives, normalised by the total weight."""
        return self._combine(self.objectives(batch), batch)

    @staticmethod
    def _combine(terms: Mapping[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        # the first term (-ELBO for ELBO-trained players) plus the sum of the others
        first, *rest = terms.values()
        total = first + sum(rest[1:], rest[0]) if rest else first
        return total / batch.weight.sum().clamp_min(1e-12)

    def sleep_loss(self, n: int) -> torch.Tensor:
        """-log q(hidden | observables) on the player's own joint samples (no gradient to the model).

        Convention: ``model(None, n=n)`` runs the path of fully unobserved examples (the same site
        names as for unlabelled data) and returns the sampled observables as a dict. The guide is
        replayed on that trace with ``sleep_hidden`` marked missing, so it scores q at the dreamt
        values of the hidden variables.
        """
        with torch.no_grad(), poutine.trace() as tr:
            values = self.model(None, n=n)
        if not isinstance(values, Mapping):
            raise TypeError(
                f"{type(self).__name__}.model(None, n=n) must return the sampled values"
            )
        hidden = self.sleep_hidden
        present = {
            k: torch.full((n,), k not in hidden, dtype=torch.bool, device=v.device)
            for k, v in values.items()
        }
        dreamt = Batch(values, present)
        guide_tr = poutine.trace(poutine.replay(self.guide, trace=tr.trace)).get_trace(dreamt)
        guide_tr.compute_log_prob()
        return -sum(
            site["log_prob"].sum()
            for site in guide_tr.nodes.values()
            if site["type"] == "sample" and not site["is_observed"]
        )

    @property
    def sleep_hidden(self) -> tuple[str, ...]:
        """Variables the guide infers in the sleep phase (default: every categorical variable)."""
        return tuple(n for n, v in self.space.items() if v.kind == "categorical")

    def learn(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One optimiser step; returns the loss and each objective (normalised by the total
        weight), detached and still on the device: reading them would wait for it."""
        self.check_input(batch)
        batch = batch.to(self.device)
        terms = self.objectives(batch)
        loss = self._combine(terms, batch)
        opt = self.optim
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total = batch.weight.sum().clamp_min(1e-12)
        return {"loss": loss.detach(), **{k: (v / total).detach() for k, v in terms.items()}}

    def check_input(self, batch: Batch) -> None:
        """A named DataError if ``batch`` does not fit the space or the value ranges (unless a host
        has checked the data already: ``check_inputs``); any variable may be absent."""
        if self.check_inputs:
            ranges = getattr(self, "value_ranges", None)
            batch.check_data(self.space, type(self).__name__, ranges, complete=False)

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        out = super()._apply(fn, recurse)
        # torch moves and casts the parameters in place but not their optimiser's state: a player
        # whose state was loaded on the CPU and then moved to a GPU would step with tensors on two
        # devices (the step counters may stay on the CPU, as torch.optim keeps them)
        optim = getattr(self, "_optim", None)
        for param, state in optim.state.items() if optim is not None else ():
            for key, value in state.items():
                if torch.is_tensor(value) and value.is_floating_point() and key != "step":
                    state[key] = value.to(device=param.device, dtype=param.dtype)
        return out

    # -- state ------------------------------------------------------------------------------------
    def parameters_state(self) -> dict[str, torch.Tensor]:
        """The module's tensors (parameters and buffers) as a plain torch state dict, copied to
        the CPU: what parameter exchange (FedAvg) sends. ``state_dict()`` is not that: it is
        ``{"module": <this>, "optim": <the optimiser's state>}``, what a checkpoint keeps."""
        return {k: v.detach().cpu().clone() for k, v in super().state_dict().items()}

    def load_parameters(self, state: Mapping[str, torch.Tensor]) -> None:
        """Copy ``state`` (as :meth:`parameters_state` gives it) into the module's tensors in
        place; the optimiser keeps its state and goes on with the same tensors."""
        torch.nn.Module.load_state_dict(self, dict(state), strict=True)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        if args or kwargs:  # called by torch while recursing through a parent module
            return super().state_dict(*args, **kwargs)
        return {"module": super().state_dict(), "optim": self.optim.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> Any:  # type: ignore[override]
        if "module" not in state:
            return super().load_state_dict(state, strict=strict)
        result = super().load_state_dict(state["module"], strict=strict)
        if "optim" in state:
            self.optim.load_state_dict(state["optim"])
        return result
