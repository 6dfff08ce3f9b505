"""Counting what a training step dispatches: aten ops, non-view ops, host syncs.

On a GPU a small-batch step of an eager transformer is bound by how many kernels the
host launches and by every point where the host waits for the device, not by FLOPs.
Both are visible on any machine: every aten op passes through ``__torch_dispatch__``,
and the ops that need a device value on the host (``.item()``, boolean-mask indexing,
``nonzero``, ...) are a known set. ``OpCounter`` counts them over whatever runs inside
it, forward and backward alike (autograd's backward ops are dispatched too).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# Ops whose result shape or value needs the device's data on the host.
_SYNC_OPS = {
    aten._local_scalar_dense.default,  # .item(), .tolist(), bool(tensor), int(tensor)
    aten.nonzero.default,
    aten.masked_select.default,
    aten.is_nonzero.default,
    aten.equal.default,
    aten.unique_consecutive.default,
    aten._unique2.default,
    aten.repeat_interleave.Tensor,
}
_INDEX_OPS = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}


def _is_bool_mask_index(func, args) -> bool:
    # x[mask] with a boolean mask is a nonzero() in disguise: its output length is data-dependent.
    if func not in _INDEX_OPS or len(args) < 2:
        return False
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None)


class OpCounter(TorchDispatchMode):
    """Context manager: ``ops`` (all aten calls), ``non_view_ops``, ``host_syncs`` and per-op counts.

    ``Tensor.tolist()`` and ``Tensor.numpy()`` read a CPU tensor's memory without
    dispatching an op (on a GPU they copy to the host first, a sync), so they are counted
    by wrapping them while the counter is active.
    """

    def __init__(self):
        super().__init__()
        self.ops = 0
        self.non_view_ops = 0
        self.host_syncs = 0
        self.by_op: Counter = Counter()
        self.syncs_by_op: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops += 1
        self.by_op[str(func)] += 1
        if not func.is_view:
            self.non_view_ops += 1
        if func in _SYNC_OPS or _is_bool_mask_index(func, args):
            self.host_syncs += 1
            self.syncs_by_op[str(func)] += 1
        return func(*args, **kwargs)

    def __enter__(self):
        self._originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy")}
        for name, original in self._originals.items():
            setattr(torch.Tensor, name, self._counting(name, original))
        return super().__enter__()

    def __exit__(self, *exc):
        for name, original in self._originals.items():
            setattr(torch.Tensor, name, original)
        return super().__exit__(*exc)

    def _counting(self, name, original):
        def wrapper(tensor, *args, **kwargs):
            self.host_syncs += 1
            self.syncs_by_op[f"Tensor.{name}"] += 1
            return original(tensor, *args, **kwargs)
        return wrapper

    def summary(self) -> dict[str, Any]:
        return {"aten_ops": self.ops, "non_view_ops": self.non_view_ops, "host_syncs": self.host_syncs,
                "syncs_by_op": dict(self.syncs_by_op)}


def shape_signature(batch: dict) -> tuple:
    """The shapes (and ints) of a batch, in key order: equal signatures mean equal step shapes.

    Tensors count by shape, ints by value; anything else (the rows' ids, carried for error
    messages) never reaches a kernel and is left out.
    """
    return tuple(
        (key, tuple(value.shape) if isinstance(value, torch.Tensor) else value)
        for key, value in sorted(batch.items())
        if isinstance(value, (torch.Tensor, int))
    )
