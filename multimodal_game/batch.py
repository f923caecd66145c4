"""Batches: named tensors with a per-example presence mask per variable and per-example weights."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

from .errors import DataError
from .spaces import Space

# Image variables hold intensities in [0, 1]: every image likelihood of the project models them
# there (a player with another range says so through ``value_ranges``).
IMAGES = ("image", "binary_image")
IMAGE_RANGE = (0.0, 1.0)


class Batch:
    """A mapping ``name -> tensor`` (first dimension: examples) with presence masks and weights.

    ``present[name][k]`` is False when example ``k`` does not observe ``name`` (an unlabelled example,
    a missing modality); the stored value of a missing entry is a valid placeholder (zeros), never
    NaN, so that masked likelihoods stay finite. ``weight[k]`` scales example ``k``'s contribution
    to a player's loss.

    Where it is known without asking the device, a batch also keeps a CPU copy of each presence
    mask (``observed_host``): players that route labelled and unlabelled rows differently need the
    row indices on the host, and reading a CUDA mask back would stall the device every step.
    """

    __slots__ = ("data", "present", "weight", "host")

    def __init__(
        self,
        data: Mapping[str, torch.Tensor],
        present: Mapping[str, torch.Tensor] | None = None,
        weight: torch.Tensor | None = None,
    ):
        if not data:
            raise ValueError("a batch needs at least one variable")
        self.data = dict(data)
        sizes = {name: t.shape[0] if t.dim() else -1 for name, t in self.data.items()}
        n = next(iter(sizes.values()))
        if any(s != n for s in sizes.values()) or n < 0:
            raise ValueError(
                f"all variables of a batch need the same number of examples, got {sizes}"
            )
        device = next(iter(self.data.values())).device
        present = dict(present or {})
        unknown = set(present) - set(self.data)
        if unknown:
            raise ValueError(
                f"presence masks given for variables not in the batch: {sorted(unknown)}"
            )
        host: dict[str, torch.Tensor] = {}
        for name in self.data:
            m = present.get(name)
            if m is None:
                m = torch.ones(n, dtype=torch.bool, device=device)
                host[name] = m if m.device.type == "cpu" else torch.ones(n, dtype=torch.bool)
            elif m.shape != (n,) or m.dtype != torch.bool:
                raise ValueError(
                    f"presence mask of {name!r} must be a bool tensor of shape ({n},), "
                    f"got {m.dtype} {tuple(m.shape)}"
                )
            elif m.device.type == "cpu":
                host[name] = m
            present[name] = m
        self.present = present
        self.host = host
        if weight is None:
            weight = torch.ones(n, device=device)
        elif weight.shape != (n,):
            raise ValueError(f"weight must have shape ({n},), got {tuple(weight.shape)}")
        self.weight = weight

    @classmethod
    def _trusted(
        cls,
        data: dict[str, torch.Tensor],
        present: dict[str, torch.Tensor],
        weight: torch.Tensor,
        host: dict[str, torch.Tensor],
    ) -> Batch:
        """A batch derived from valid ones (index, project, merge, to): no checks, no copies.

        Validation is for what users and players hand in; re-checking every derived batch cost
        about a tenth of a millisecond per producer-consumer pair per round (it shows at 16
        players, 240 pairs)."""
        b = cls.__new__(cls)
        b.data, b.present, b.weight, b.host = data, present, weight, host
        return b

    # -- basic access -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return next(iter(self.data.values())).shape[0]

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.data[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.data)

    @property
    def device(self) -> torch.device:
        return next(iter(self.data.values())).device

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{k}:{tuple(v.shape[1:])}[{int(self.present[k].sum())}/{len(self)}]"
            for k, v in self.data.items()
        )
        return f"Batch(n={len(self)}, {parts})"

    def observed(self, name: str) -> torch.Tensor:
        """Presence mask of ``name``; all False when the batch does not carry the variable."""
        if name in self.present:
            return self.present[name]
        return torch.zeros(len(self), dtype=torch.bool, device=self.device)

    def observed_host(self, name: str) -> torch.Tensor:
        """``observed(name)`` as a CPU tensor: free where the batch knows it (sources, samples and
        everything derived from them), otherwise read back from the device (a synchronisation)."""
        if name in self.host:
            return self.host[name]
        if name in self.present:
            return self.present[name].cpu()
        return torch.zeros(len(self), dtype=torch.bool)

    # -- transformations --------------------------------------------------------------------------
    def project(self, names: Iterable[str]) -> Batch:
        """Only the variables in ``names`` (those the batch carries); shares storage with ``self``."""
        keep = [n for n in names if n in self.data]
        if not keep:
            raise ValueError(f"projection onto {list(names)} leaves no variable of {self.names}")
        if len(keep) == len(self.data):
            return self
        return Batch._trusted(
            {n: self.data[n] for n in keep},
            {n: self.present[n] for n in keep},
            self.weight,
            {n: self.host[n] for n in keep if n in self.host},
        )

    def index(self, idx: torch.Tensor | slice, host_idx: torch.Tensor | None = None) -> Batch:
        """Rows ``idx``; ``host_idx``, the same indices on the CPU, keeps the host masks known when
        ``idx`` lives on the device."""
        if host_idx is None and (isinstance(idx, slice) or idx.device.type == "cpu"):
            host_idx = idx
        return Batch._trusted(
            {k: v[idx] for k, v in self.data.items()},
            {k: v[idx] for k, v in self.present.items()},
            self.weight[idx],
            {} if host_idx is None else {k: v[host_idx] for k, v in self.host.items()},
        )

    def head(self, n: int) -> Batch:
        return self if n == len(self) else self.index(slice(0, n))

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        # a batch's tensors share one device (masks and weights are made on the data's device)
        if _on(next(iter(self.data.values())), torch.device(device)):
            return self
        return Batch._trusted(
            {k: v.to(device, non_blocking=non_blocking) for k, v in self.data.items()},
            {k: v.to(device, non_blocking=non_blocking) for k, v in self.present.items()},
            self.weight.to(device, non_blocking=non_blocking),
            self.host,
        )

    def with_weight(self, weight: torch.Tensor | float) -> Batch:
        if not torch.is_tensor(weight):
            weight = torch.full((len(self),), float(weight), device=self.device)
        return Batch._trusted(self.data, self.present, weight, self.host)

    def nbytes(self) -> int:
        """Bytes of the variable values (what travels between players)."""
        return sum(t.numel() * t.element_size() for t in self.data.values())

    def check(self, space: Space, owner: str = "") -> None:
        """Raise a ``ValueError`` naming the variable if a value does not fit ``space``."""
        for name, value in self.data.items():
            if name not in space:
                where = f" of player {owner!r}" if owner else ""
                raise ValueError(
                    f"batch variable {name!r} is not in the space{where}: {sorted(space)}"
                )
            space[name].check_values(value, owner)

    def check_data(
        self,
        space: Space,
        owner: str = "",
        ranges: Mapping[str, tuple[float, float]] | None = None,
        complete: bool = True,
    ) -> None:
        """Check a player's own data against its space before any learning: every variable known
        and of the right shape, every observed variable present (a categorical may be absent: all
        unlabelled; with ``complete=False`` any variable may be: a batch of a partial view),
        categorical codes integers in [0, k), other values finite and inside the
        range the player's likelihood models (``ranges``: variable -> (low, high); images default
        to [0, 1]). A :class:`DataError` names the player and the variable."""
        ranges = {
            **{n: IMAGE_RANGE for n, v in space.items() if v.kind in IMAGES},
            **(ranges or {}),
        }
        who = f"player {owner!r}" if owner else "the player"
        try:
            self.check(space, owner)
        except ValueError as e:
            raise DataError(f"data of {who}: {e}") from None
        for name, var in space.items():
            if var.kind == "latent":
                continue
            if name not in self.data:
                if var.kind != "categorical" and complete:
                    raise DataError(
                        f"data of {who} has no variable {name!r} ({var.describe()}); "
                        f"it has {sorted(self.data)}"
                    )
                continue
            value, seen = self.data[name], self.observed_host(name)
            if var.kind == "categorical":
                if value.dtype.is_floating_point or value.dtype == torch.bool:
                    raise DataError(
                        f"data of {who}: {name!r} holds {value.dtype} values, expected integer "
                        f"class codes in [0, {var.cardinality})"
                    )
                codes = value.cpu()[seen]
                bad = codes[(codes < 0) | (codes >= var.cardinality)]
                if len(bad):
                    raise DataError(
                        f"data of {who}: {name!r} has {len(bad)} observed code(s) outside "
                        f"[0, {var.cardinality}), e.g. {bad[:5].tolist()}"
                    )
            elif var.kind in IMAGES and value.dtype != torch.float32:
                fix = ".float() / 255" if not value.dtype.is_floating_point else ".float()"
                raise DataError(
                    f"data of {who}: {name!r} ({var.describe()}) holds {value.dtype} values; "
                    f"images are float32 in [0, 1], as the players compute (convert with {fix})"
                )
            elif not torch.isfinite(value.cpu()[seen]).all():
                raise DataError(f"data of {who}: {name!r} holds non-finite values (NaN or inf)")
            elif name in ranges and seen.any():
                low, high = ranges[name]
                vals = value.cpu()[seen]
                lo, hi = float(vals.min()), float(vals.max())
                if lo < low or hi > high:
                    hint = " (uint8 images: divide by 255)" if hi > 1.5 and high <= 1 else ""
                    raise DataError(
                        f"data of {who}: {name!r} ({var.describe()}) holds values in "
                        f"[{lo:g}, {hi:g}], outside [{low:g}, {high:g}] that its likelihood "
                        f"models{hint}"
                    )

    @staticmethod
    def merge(parts: Sequence[Batch], weights: Sequence[float] | None = None) -> Batch:
        """Concatenate batches from several sources into one.

        A variable that some part lacks is filled with zeros and marked absent for those rows. If
        ``weights`` is given, every example of ``parts[k]`` gets weight ``weights[k]`` (times its own).
        """
        if not parts:
            raise ValueError("merge needs at least one batch")
        if weights is not None and len(weights) != len(parts):
            raise ValueError("merge: one weight per part")
        if len(parts) > 1:  # empty parts add nothing (their weights go with them)
            keep = [k for k, p in enumerate(parts) if len(p) > 0] or [0]
            parts = [parts[k] for k in keep]
            weights = None if weights is None else [weights[k] for k in keep]
        names: dict[str, torch.Tensor] = {}
        for p in parts:
            for k, v in p.data.items():
                ref = names.setdefault(k, v)
                if (
                    ref.shape[1:] == v.shape[1:]
                    and ref.dtype != v.dtype
                    and (ref.is_floating_point() and v.is_floating_point())
                ):  # e.g. float64 statistics rows beside float32 data: the wider type
                    wide = torch.promote_types(ref.dtype, v.dtype)
                    names[k] = ref = ref.to(wide)
                    continue
                if ref.shape[1:] != v.shape[1:] or ref.dtype != v.dtype:
                    raise ValueError(
                        f"merge: variable {k!r} has per-example shape {tuple(ref.shape[1:])} "
                        f"({ref.dtype}) in one part and {tuple(v.shape[1:])} ({v.dtype}) in another"
                    )
        data, present, host = {}, {}, {}
        for k, ref in names.items():
            vals, masks, hosts = [], [], []
            for p in parts:
                if k in p.data:
                    vals.append(p.data[k])
                    masks.append(p.present[k])
                    hosts.append(p.host.get(k))
                else:
                    vals.append(ref.new_zeros((len(p), *ref.shape[1:])))
                    masks.append(torch.zeros(len(p), dtype=torch.bool, device=ref.device))
                    hosts.append(torch.zeros(len(p), dtype=torch.bool))
            data[k] = torch.cat([v.to(ref.dtype) for v in vals])
            present[k] = torch.cat(masks)
            if all(h is not None for h in hosts):
                host[k] = torch.cat(hosts) if present[k].device.type != "cpu" else present[k]
        weight = torch.cat([p.weight for p in parts])
        if weights is not None:
            # one multiply for all parts (a multiply per part costs more at 16 players)
            scale = torch.tensor([float(w) for w in weights], dtype=weight.dtype)
            scale = scale.repeat_interleave(torch.tensor([len(p) for p in parts]))
            weight = weight * scale.to(weight.device, non_blocking=True)
        return Batch._trusted(data, present, weight, host)

    # -- (de)serialisation for checkpoints and the object store -------------------------------------
    def state(self) -> dict[str, dict[str, torch.Tensor] | torch.Tensor]:
        return {
            "data": dict(self.data),
            "present": dict(self.present),
            "weight": self.weight,
            "host": dict(self.host),
        }

    @classmethod
    def from_state(cls, state: Mapping) -> Batch:
        b = cls(state["data"], state["present"], state["weight"])
        for k, m in state.get("host", {}).items():
            if k in b.data and m.shape == (len(b),) and m.dtype == torch.bool:
                b.host.setdefault(k, m.cpu())
        return b


def _on(t: torch.Tensor, device: torch.device) -> bool:
    """Whether ``t`` lives on ``device`` (``cuda`` without an index means the current one)."""
    if t.device.type != device.type:
        return False
    if device.index is None and device.type == "cuda":
        return t.device.index == torch.cuda.current_device()
    return device.index is None or t.device.index == device.index
