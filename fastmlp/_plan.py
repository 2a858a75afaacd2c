"""How a call runs (Network.plan) and the forced plans the tests compare (Network._with_plan).

The compiled core plans every call from the network's widths and dtype, the kernel variant,
the rows and the threads; this module names its choices for people."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from . import _core
from .layers import Dense, Layer

if TYPE_CHECKING:
    from .network import Network

# The C core's codes (fastmlp.h: FM_SPLIT_*, FM_DENSE_*).
SPLITS = ("auto", "rows", "columns")
DENSE_METHODS = ("auto", "panels", "narrow")
_METHOD_NAMES = {1: "panels", 2: "narrow", 3: "one row", 4: "reduced precision"}


def options(tile_rows: int = 0, split: str = "auto", dense: str = "auto",
            k_block: int = 0) -> Tuple[int, int, int, int]:
    """The core's plan options from names; ValueError listing the valid ones."""
    for name, value in (("tile_rows", tile_rows), ("k_block", k_block)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if dense not in DENSE_METHODS:
        raise ValueError(f"unknown dense method {dense!r}; valid: {', '.join(DENSE_METHODS)}")
    return tile_rows, SPLITS.index(split), DENSE_METHODS.index(dense), k_block


def _step_label(layer: Optional[Layer], width: int) -> str:
    if layer is None:
        return "residual block begins"
    if isinstance(layer, Dense):
        n_in, n_out = layer.weights.shape
        name = layer.activation[0] if isinstance(layer.activation, tuple) else layer.activation
        return f"Dense {n_in}->{n_out} {name}"
    return f"{type(layer).__name__} ({width} features)"


def describe(net: "Network", batch: int, threads: Optional[int],
             labels: List[Optional[Layer]]) -> Dict[str, Any]:
    """The plan of net(x) for x of `batch` rows on `threads` threads (None: its default)."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    n_threads, split_columns, tile_rows, n_tiles, scratch, tile_bytes, methods = net._plan(
        batch, _core.check_threads(threads))
    steps = []
    for layer, (method, width, k_block) in zip(labels, methods):
        step: Dict[str, Any] = {"step": _step_label(layer, width)}
        if method >= 0:
            step["method"] = _METHOD_NAMES[method]
        if _METHOD_NAMES.get(method) == "panels":
            step["inputs_per_block"] = k_block
        steps.append(step)
    return {
        "batch": batch,
        "kernel": _core.active_kernel(),
        "threads": n_threads,
        "split": "columns" if split_columns else ("rows" if n_threads > 1 else "none"),
        "tile_rows": tile_rows,
        "tiles": n_tiles,
        "scratch_bytes": scratch,
        "tile_target_bytes": tile_bytes,
        "steps": steps,
    }
