"""Show the layers, shapes, activations, dtype, parameter count, memory and FLOPs per sample of
a model (.npz, .safetensors or .onnx)."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, Dict, List, Mapping

import numpy as np

from ._common import count, load_model

if TYPE_CHECKING:
    from fastmlp import Network


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a .npz, .safetensors or .onnx model")
    parser.add_argument("--json", action="store_true", help="print the description as JSON")


def describe(net: "Network") -> Dict[str, Any]:
    """A JSON-friendly summary of a network: every layer (Residual blocks flattened, each
    layer named by its path), parameters, memory, FLOPs."""
    layers = _layer_rows(net.layers, "")
    n_params = sum(layer["parameters"] for layer in layers)
    return {
        "dtype": net.dtype.name,
        "inputs": net.n_inputs,
        "outputs": net.n_outputs,
        "layers": layers,
        "parameters": n_params,
        "precision": net.precision,
        # what the parameters take as stored (reduced weights at 2 or 1 byte each)
        "parameter_bytes": _stored_bytes(net.layers),
        # One multiply and one add per weight (the core counts the multiply-adds); the bias
        # add replaces the first add of each dot product; activations are not counted.
        "flops_per_sample": 2 * net.macs_per_row,
    }


def _layer_rows(layers: Any, prefix: str) -> List[Dict[str, Any]]:
    from fastmlp.layers import Activation, Affine, Dense, LayerNorm, Residual

    rows: List[Dict[str, Any]] = []
    width = None
    for i, layer in enumerate(layers):
        path = f"{prefix}{i}"
        if isinstance(layer, Residual):
            inner = _layer_rows(layer.layers, f"{path}.")
            rows.append({"layer": path, "kind": "residual", "inputs": inner[0]["inputs"],
                         "outputs": inner[-1]["outputs"], "parameters": 0,
                         "activation": "x + f(x)", "activation_params": {}})
            rows[-1:-1] = inner  # the block's layers, then its sum
            width = rows[-1]["outputs"]
            continue
        row: Dict[str, Any] = {"layer": path, "kind": type(layer).__name__.lower(),
                               "activation": "", "activation_params": {}}
        if isinstance(layer, Dense):
            n_in, n_out = layer.weights.shape
            row.update(inputs=n_in, outputs=n_out, parameters=layer.weights.size + n_out)
        else:
            arrays = [getattr(layer, k) for k in layer.__slots__
                      if isinstance(getattr(layer, k), np.ndarray)]
            size = next((a.shape[0] for a in arrays if a.ndim == 1), None)
            if isinstance(layer, LayerNorm) and layer.width:
                size = layer.width
            n = size or width
            row.update(inputs=n, outputs=n, parameters=sum(a.size for a in arrays))
        if isinstance(layer, (Dense, Activation)):
            activation: Any = layer.activation  # (name, params) once inside a Network
            name, params = activation
            vectors = {k: v for k, v in params.items() if np.ndim(v)}
            row["parameters"] += sum(np.size(v) for v in vectors.values())
            row.update(activation=name, activation_params={
                k: (f"<{np.size(v)} values>" if k in vectors else v) for k, v in params.items()})
        elif isinstance(layer, (Affine, LayerNorm)):
            row["activation"] = ""
        width = row["outputs"]
        rows.append(row)
    return rows


def summary(net: "Network") -> str:
    """'3 layers, 6 inputs -> 3 outputs, float32' (', int8 weights' when reduced)."""
    reduced = f", {net.precision} weights" if net.precision != net.dtype.name else ""
    return (f"{count(len(net), 'layer')}, {count(net.n_inputs, 'input')} -> "
            f"{count(net.n_outputs, 'output')}, {net.dtype.name}{reduced}")


def _stored_bytes(layers: Any) -> int:
    from fastmlp.layers import Residual

    total = 0
    for layer in layers:
        if isinstance(layer, Residual):
            total += _stored_bytes(layer.layers)
            continue
        for key in layer.__slots__:
            value = getattr(layer, key)
            if key == "activation":
                value = [v for v in value[1].values() if np.ndim(v)]
                total += sum(np.asarray(v).nbytes for v in value)
            elif hasattr(value, "nbytes"):
                total += int(value.nbytes)
    return total


def _activation_text(name: str, params: Mapping[str, float]) -> str:
    if not params:
        return name
    return name + "(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"


def _bytes_text(n: float) -> str:
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            break
    return f"{n:,.1f} {unit}"


def run(args: argparse.Namespace) -> int:
    net = load_model(args.model)
    d = describe(net)
    if args.json:
        print(json.dumps(d, indent=2, default=float))  # float(): numpy scalars in params
        return 0
    print(f"{args.model}: {summary(net)}")
    print()
    rows = [("layer", "shape", "activation", "parameters")]
    for layer in d["layers"]:
        kind = "" if layer["kind"] == "dense" else f"{layer['kind']} "
        shape = (f"{layer['inputs']} x {layer['outputs']}" if layer["kind"] == "dense"
                 else f"{kind}{layer['outputs']}")
        rows.append((layer["layer"], shape,
                     _activation_text(layer["activation"], layer["activation_params"]),
                     f"{layer['parameters']:,}"))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        print(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  "
              f"{r[3]:>{widths[3]}}")
    print()
    print(f"  parameters       {d['parameters']:,}")
    print(f"  memory           {count(d['parameter_bytes'], 'byte')} "
          f"({_bytes_text(d['parameter_bytes'])}) of parameters")
    print(f"  FLOPs per sample {d['flops_per_sample']:,} "
          "(2 per multiply-add; activations not counted)")
    return 0
