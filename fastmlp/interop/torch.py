"""Convert a PyTorch ``nn.Sequential`` MLP into a :class:`fastmlp.Network`."""

import numpy as np

from ._chain import DenseChain, model_dtype, require

SUPPORTED = (
    "Linear, ReLU, Tanh, Sigmoid, Softmax(dim=-1 or 1), LeakyReLU, ELU, GELU, SiLU, Softplus, "
    "BatchNorm1d (eval mode), Identity, Dropout, Flatten(start_dim=1) and nested Sequential"
)


def from_torch(module):
    """Returns a :class:`fastmlp.Network` computing ``module(x)`` for 2-D inputs ``x``.

    ``module`` is an ``nn.Sequential`` (nested ones are flattened) or a single supported
    module. ``nn.Linear`` weights (out x in) are transposed; two Linear layers in a row keep
    an identity activation between them. ``BatchNorm1d`` in eval mode is folded into the
    adjacent Linear. Dropout is treated as at inference (a no-op), whatever the module's mode.
    The dtype (float32 / float64) is that of the parameters.

    Raises ``ValueError`` naming the module (its path in the Sequential and its repr) when it
    cannot be represented exactly.
    """
    torch = require("torch", "torch", "from_torch")
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    chain = DenseChain()
    dtypes = []
    for path, mod in _leaves(module, "", torch.nn):
        where = f"module {path or '<root>'} ({mod!r})"
        _convert(chain, mod, where, torch, dtypes)
    return chain.build(model_dtype(dtypes, "the module"), "the module")


def _leaves(module, path, nn):
    """(path, module) of the leaves of nested Sequentials; paths are the state_dict prefixes."""
    if isinstance(module, nn.Sequential) and _plain(module, nn.Sequential):
        # _modules is what Sequential.forward runs, in order; named_children() would skip a
        # module instance used twice, e.g. one ReLU object after every Linear.
        for name, child in module._modules.items():
            yield from _leaves(child, f"{path}.{name}" if path else name, nn)
    else:
        yield path, module


def _plain(module, cls):
    """True when ``module`` behaves as ``cls``: a subclass overriding forward may do anything."""
    return isinstance(module, cls) and type(module).forward is cls.forward


def _numpy(tensor, dtypes):
    dtypes.append(str(tensor.dtype).replace("torch.", ""))
    return tensor.detach().cpu().double().numpy()


def _convert(chain, m, where, torch, dtypes):
    nn = torch.nn
    if _plain(m, nn.Linear):
        if nn.parameter.is_lazy(m.weight):
            raise ValueError(f"{where}: lazy module is not initialized yet (run it once first)")
        bias = None if m.bias is None else _numpy(m.bias, dtypes)
        chain.dense(_numpy(m.weight, dtypes).T, bias, where)
    elif _plain(m, nn.BatchNorm1d):
        chain.affine(*_batchnorm(m, where, dtypes), where)
    elif any(_plain(m, cls) for cls in (nn.Identity, nn.Dropout)):
        pass  # no-ops at inference
    elif _plain(m, nn.Flatten):
        if m.start_dim not in (1, -1):
            raise ValueError(f"{where}: start_dim={m.start_dim} flattens the batch dimension")
    else:
        name, params = _activation(m, where, nn)
        chain.activation(name, params, where)


def _batchnorm(m, where, dtypes):
    """(scale, shift) of a BatchNorm1d at inference: (x - mean) / sqrt(var + eps) * w + b."""
    if m.training:
        raise ValueError(f"{where}: in training mode it normalises with batch statistics; "
                         "call model.eval() first")
    if m.running_mean is None or m.running_var is None:
        raise ValueError(f"{where}: has no running statistics (track_running_stats=False), "
                         "so it normalises with batch statistics even in eval mode")
    mean, var = _numpy(m.running_mean, dtypes), _numpy(m.running_var, dtypes)
    scale = 1.0 / np.sqrt(var + m.eps)
    if m.weight is not None:
        scale = scale * _numpy(m.weight, dtypes)
    shift = -mean * scale
    if m.bias is not None:
        shift = shift + _numpy(m.bias, dtypes)
    return scale, shift


def _activation(m, where, nn):
    """(fastmlp name, params) of an activation module, or ValueError."""
    simple = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SiLU: "silu"}
    for cls, name in simple.items():
        if _plain(m, cls):
            return name, {}
    if _plain(m, nn.Softmax):
        # Over the features of a (batch, features) input: dim -1 or 1, or None, which PyTorch
        # resolves to 1 for 2-D and to 0 (the only axis) for 1-D input.
        if m.dim not in (-1, 1, None):
            raise ValueError(f"{where}: softmax over dim={m.dim} is not over the features "
                             "(fastmlp applies softmax over each row)")
        return "softmax", {}
    if _plain(m, nn.LeakyReLU):
        return "leaky_relu", {"negative_slope": float(m.negative_slope)}
    if _plain(m, nn.ELU):
        return "elu", {"alpha": float(m.alpha)}
    if _plain(m, nn.GELU):
        names = {"none": "gelu", "tanh": "gelu_tanh"}
        if m.approximate not in names:
            raise ValueError(f"{where}: unknown approximate={m.approximate!r}")
        return names[m.approximate], {}
    if _plain(m, nn.Softplus):
        return "softplus", {"beta": float(m.beta), "threshold": float(m.threshold)}
    known = (nn.Sequential, nn.Linear, nn.BatchNorm1d, nn.Identity, nn.Dropout, nn.Flatten,
             nn.Softmax, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Softplus, *simple)
    base = next((cls for cls in known if isinstance(m, cls)), None)
    if base is not None:
        raise ValueError(f"{where}: this subclass of {base.__name__} overrides forward(), "
                         "so what it computes is unknown")
    raise ValueError(f"{where}: unsupported module; supported: {SUPPORTED}")


__all__ = ["from_torch"]
