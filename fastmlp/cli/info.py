"""Show the layers, shapes, activations, dtype, parameter count, memory and FLOPs per sample of
a model (.npz, .safetensors or .onnx)."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, Dict, Mapping

import numpy as np

from ._common import count, load_model

if TYPE_CHECKING:
    from fastmlp import Network


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a .npz, .safetensors or .onnx model")
    parser.add_argument("--json", action="store_true", help="print the description as JSON")


def _parameter_count(layer: Any) -> int:
    """The numbers a layer holds (its arrays' sizes; a Residual's inner layers included)."""
    total = 0
    for key in type(layer).__slots__:
        value = getattr(layer, key)
        if key == "layers":  # a Residual's
            total += sum(_parameter_count(inner) for inner in value)
        elif isinstance(value, np.ndarray):
            total += value.size
    return total


def _describe_layer(layer: Any) -> Dict[str, Any]:
    from fastmlp.layers import Dense

    if isinstance(layer, Dense):
        activation: Any = layer.activation  # (name, params) once inside a Network
        (n_in, n_out), (name, params) = layer.weights.shape, activation
        return {"kind": "Dense", "inputs": n_in, "outputs": n_out, "activation": name,
                "activation_params": dict(params), "parameters": _parameter_count(layer)}
    return {"kind": type(layer).__name__, "description": repr(layer),
            "parameters": _parameter_count(layer)}


def describe(net: "Network") -> Dict[str, Any]:
    """A JSON-friendly summary of a network: layers, parameters, memory, FLOPs."""
    layers = [_describe_layer(layer) for layer in net.layers]
    n_params = sum(layer["parameters"] for layer in layers)
    return {
        "dtype": net.dtype.name,
        "inputs": net.n_inputs,
        "outputs": net.n_outputs,
        "layers": layers,
        "parameters": n_params,
        "parameter_bytes": n_params * net.dtype.itemsize,
        # One multiply and one add per weight of the Dense layers (the core counts the
        # multiply-adds); the bias add replaces the first add of each dot product; activations
        # and the elementwise layers are not counted.
        "flops_per_sample": 2 * net.macs_per_row,
    }


def summary(net: "Network") -> str:
    """'3 layers, 6 inputs -> 3 outputs, float32'."""
    return (f"{count(len(net), 'layer')}, {count(net.n_inputs, 'input')} -> "
            f"{count(net.n_outputs, 'output')}, {net.dtype.name}")


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
    for i, layer in enumerate(d["layers"], 1):
        if layer["kind"] == "Dense":
            shape = f"{layer['inputs']} x {layer['outputs']}"
            text = _activation_text(layer["activation"], layer["activation_params"])
        else:
            shape, text = "", layer["description"]
        rows.append((str(i), shape, text, f"{layer['parameters']:,}"))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        print(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  "
              f"{r[3]:>{widths[3]}}")
    print()
    print(f"  parameters       {d['parameters']:,}")
    print(f"  memory           {count(d['parameter_bytes'], 'byte')} "
          f"({_bytes_text(d['parameter_bytes'])}) of weights and biases")
    print(f"  FLOPs per sample {d['flops_per_sample']:,} "
          "(2 per multiply-add; activations not counted)")
    return 0
