"""Convert a PyTorch MLP (``nn.Sequential`` or any ``nn.Module`` whose forward is a chain of
supported operations) into a :class:`fastmlp.Network`.

The module is read with ``torch.fx`` symbolic tracing, so a custom ``forward`` may call modules,
functions (``F.relu``, ``torch.tanh``, ``F.linear`` on its own parameters), tensor methods
(``x.relu()``, ``x.flatten(1)``, ``x.view(x.size(0), -1)``), arithmetic with constants, and add
the input of a block to its output (``x + f(x)``, a residual block).
"""

import operator

import numpy as np

from ._chain import DenseChain, model_dtype, require

SUPPORTED = (
    "Linear, BatchNorm1d (eval mode), LayerNorm (over the last dimension), ReLU, Tanh, Sigmoid, "
    "Softmax / LogSoftmax (dim=-1 or 1), LeakyReLU, PReLU, ELU, CELU, SELU, GELU, SiLU, Mish, "
    "Softplus, Hardswish, Hardsigmoid, ReLU6, Hardtanh, Softsign, Identity, Dropout, "
    "Flatten(start_dim=1), the same as functions and tensor methods, arithmetic with constants, "
    "and x + f(x)"
)


def from_torch(module):
    """Returns a :class:`fastmlp.Network` computing ``module(x)`` for 2-D inputs ``x``.

    ``module`` is an ``nn.Module``: an ``nn.Sequential`` (nested ones are flattened), a single
    supported module, or a custom module whose forward symbolic tracing reads as a chain; a
    ``torch.compile`` wrapper is unwrapped. ``nn.Linear`` weights (out x in) are transposed;
    two Linear layers in a row keep an identity activation between them. BatchNorm1d in eval
    mode and other per-feature maps become ``Affine`` steps, LayerNorm a ``LayerNorm`` step,
    ``x + f(x)`` a ``Residual``. Dropout is treated as at inference (a no-op), whatever the
    module's mode. The dtype (float32 / float64) is that of the parameters; float16 and
    bfloat16 parameters are read exactly, as float32.

    Raises ``ValueError`` naming the module or operation (its path and its repr) when it cannot
    be represented exactly.
    """
    torch = require("torch", "torch", "from_torch")
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    module = _unwrap(module, torch)
    reader = _Reader(module, torch)
    if _is_leaf(module, torch):  # a single library module: its own forward is not traced
        reader.leaf(module, f"module <root> ({module!r})")
    else:
        reader.trace()
    return reader.chain.build(model_dtype(reader.dtypes, "the module"), "the module")


def _unwrap(module, torch):
    """The nn.Module under a torch.compile wrapper; TorchScript refused with what to pass."""
    while type(module).__name__ == "OptimizedModule" and hasattr(module, "_orig_mod"):
        module = module._orig_mod
    if isinstance(module, torch.jit.ScriptModule):
        raise ValueError(
            f"a TorchScript module ({type(module).__name__} {module.original_name!r}) keeps no "
            "Python forward to read: pass the nn.Module it was scripted or traced from, or "
            "export it with torch.onnx.export and load the file with from_onnx"
        )
    return module


def _is_leaf(module, torch):
    # The tracer's own rule: library modules are called as a whole, except Sequential.
    return type(module).__module__.startswith(("torch.nn", "torch.ao.nn")) and not isinstance(
        module, torch.nn.Sequential)


class _Batch:
    """The batch size, as ``x.size(0)`` / ``x.shape[0]`` give it (for view / reshape)."""


class _Reader:
    """Feeds a DenseChain from a module's leaves or from its traced graph."""

    def __init__(self, module, torch):
        self.root, self.torch, self.nn = module, torch, torch.nn
        self.chain = DenseChain()
        self.dtypes = []

    def _numpy(self, tensor):
        self.dtypes.append(str(tensor.dtype).replace("torch.", ""))
        return tensor.detach().cpu().double().numpy()

    # -- the traced graph -----------------------------------------------------------------

    def trace(self):
        fx = self.torch.fx
        try:
            graph = fx.symbolic_trace(self.root).graph
        except Exception as exc:  # TraceError, control flow on the data, untraceable calls
            raise ValueError(
                f"the module's forward cannot be read with torch.fx symbolic tracing "
                f"({type(exc).__name__}: {exc}); fastmlp reads forwards that are a chain of "
                f"supported operations: {SUPPORTED}"
            ) from None
        self.values = {}  # fx node -> a constant, _Batch, or the data marker DATA
        self.current = None  # the fx node holding the data
        self.marks = []  # (fx node, chain mark) of residual branch points, innermost last
        for node in graph.nodes:
            self._node(node)

    def _node(self, node):
        where = f"operation {node.name!r} ({node.format_node()})"
        if node.op == "placeholder":
            if self.current is not None:
                raise ValueError(f"{where}: forward takes more than one input")
            self._set_data(node)
        elif node.op == "get_attr":
            self.values[node] = _attribute(self.root, node.target)
        elif node.op == "output":
            if node.args[0] is not self.current:
                raise ValueError(f"{where}: the output is not the result of the chain")
            if self.marks:
                raise ValueError(f"{where}: {self.marks[-1][0].name!r} is read by a later "
                                 "operation that is not x + f(x)")
        else:
            self._operation(node, where)

    def _set_data(self, node):
        self.values[node] = DATA
        self.current = node
        readers = [user for user in node.users if _reads_data(user)]
        if len(readers) > 1:  # a branch point: each reader after the first is an x + f(x)
            mark = self.chain.mark()
            self.marks += [(node, mark)] * (len(readers) - 1)

    def _operation(self, node, where):
        args, kwargs = node.args, node.kwargs
        data = [a for a in _flat_args(args, kwargs) if self.values.get(a) is DATA]
        if not data:  # constants only: evaluated now, as the model's forward would
            self.values[node] = self._evaluate(node, where)
            return
        if self._shape_query(node):
            self.values[node] = _Batch
            return
        if len(data) == 2 and _is_add(node):
            self._residual_add(node, data, where)
            return
        if len(data) > 1 or data[0] is not self.current:
            raise ValueError(f"{where}: reads the data from {data[0].name!r}, not the value "
                             "before it; only chains (and x + f(x)) are supported")
        if node.op == "call_module":
            module = self.root.get_submodule(node.target)
            self._reject_extra_arguments(node, where)
            self.leaf(module, f"module {node.target} ({module!r})")
        else:
            resolved = {name: self._resolve(value) for name, value in kwargs.items()}
            self._function(node, [self._resolve(a) for a in args], resolved, where)
        self._set_data(node)

    def _reject_extra_arguments(self, node, where):
        if len(node.args) != 1 or node.kwargs:
            raise ValueError(f"{where}: called with more than the data")

    def _resolve(self, value):
        if isinstance(value, (list, tuple)):
            return type(value)(self._resolve(v) for v in value)
        if isinstance(value, self.torch.fx.Node):
            return self.values[value]
        return value

    def _evaluate(self, node, where):
        """An operation on constants (``self.weight.t()``, ``self.scale * 2``)."""
        args = [self._resolve(a) for a in node.args]
        kwargs = {k: self._resolve(v) for k, v in node.kwargs.items()}
        if node.target is operator.getitem and args[0] is _Batch and args[1] == 0:
            return _Batch  # x.shape[0]
        if any(v is _Batch for v in _flat_args(args, kwargs)):
            raise ValueError(f"{where}: computes with the batch size")
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        module = self.root.get_submodule(node.target)
        with self.torch.no_grad():
            return module(*args, **kwargs)

    def _shape_query(self, node):
        """True for x.size(0), x.shape and x.shape[0] style reads of the batch size."""
        if node.op == "call_method" and node.target == "size":
            return node.args[1:] in ((0,), ()) and "dim" not in node.kwargs
        return node.op == "call_function" and node.target is getattr and node.args[1] == "shape"

    def _residual_add(self, node, data, where):
        if data[0] is data[1]:
            self.chain.affine(2.0, None, where)  # x + x
            self._set_data(node)
            return
        start = data[0] if data[1] is self.current else data[1]
        if self.current not in data or not self.marks or self.marks[-1][0] is not start:
            raise ValueError(f"{where}: adds two values that are not x and f(x) of one "
                             "block; only chains and residual blocks are supported")
        _, mark = self.marks.pop()
        if node.kwargs.get("alpha", 1) != 1:
            raise ValueError(f"{where}: x + alpha * f(x) with alpha != 1 is not supported")
        self.chain.residual_since(mark, where)
        self._set_data(node)

    # -- functions and methods ------------------------------------------------------------

    def _function(self, node, args, kwargs, where):
        """A call_function / call_method whose first data argument is the data."""
        name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
        if node.op == "call_function" and node.target in _ARITHMETIC:
            return self._arithmetic(_ARITHMETIC[node.target], args, where)
        if node.op == "call_method" and name in _METHOD_ARITHMETIC:
            return self._arithmetic(_METHOD_ARITHMETIC[name], args, where)
        if args[0] is not DATA:
            raise ValueError(f"{where}: the data is not its first argument")
        handler = _FUNCTIONS.get(name) if self._is_library(node) else None
        if handler is None:
            raise ValueError(f"{where}: unsupported operation; supported: {SUPPORTED}")
        handler(self, _Arguments(args, kwargs, where), where)

    @staticmethod
    def _is_library(node):
        module = getattr(node.target, "__module__", None) or ""
        return node.op == "call_method" or module.startswith(("torch", "_operator"))

    def _arithmetic(self, kind, args, where):
        x, other = args[0], args[1] if len(args) > 1 else None
        if kind == "neg":
            return self.chain.affine(-1.0, None, where)
        if x is not DATA:  # the data second: c + x, c * x, c - x
            x, other = other, x
            if kind == "sub":
                return self.chain.affine(-1.0, self._constant(other, where), where)
            if kind == "div":
                raise ValueError(f"{where}: divides by the data")
        c = self._constant(other, where)
        if kind == "add":
            self.chain.affine(None, c, where)
        elif kind == "sub":
            self.chain.affine(None, -c, where)
        elif kind == "mul":
            self.chain.affine(c, None, where)
        else:  # x / c becomes x * (1/c): equal up to one rounding
            self.chain.affine(1.0 / c, None, where)

    def _constant(self, value, where):
        if isinstance(value, self.torch.Tensor):
            value = self._numpy(value)
        value = np.asarray(value, dtype=np.float64)
        if value.ndim > 2 or (value.ndim == 2 and value.shape[0] != 1):
            raise ValueError(f"{where}: a constant of shape {value.shape} is not per feature")
        return value.reshape(-1) if value.size > 1 else value.reshape(())

    # -- library modules ------------------------------------------------------------------

    def leaf(self, m, where):
        nn, chain = self.nn, self.chain
        if _plain(m, nn.Linear):
            if nn.parameter.is_lazy(m.weight):
                raise ValueError(f"{where}: lazy module is not initialized yet (run it once "
                                 "first)")
            bias = None if m.bias is None else self._numpy(m.bias)
            chain.dense(self._numpy(m.weight).T, bias, where)
        elif _plain(m, nn.BatchNorm1d):
            chain.affine(*self._batchnorm(m, where), where)
        elif _plain(m, nn.LayerNorm):
            self._layer_norm(m.normalized_shape, m.weight, m.bias, m.eps, where)
        elif any(_plain(m, cls) for cls in (nn.Identity, nn.Dropout, nn.AlphaDropout)):
            pass  # no-ops at inference
        elif _plain(m, nn.Flatten):
            if m.start_dim not in (1, -1):
                raise ValueError(f"{where}: start_dim={m.start_dim} flattens the batch dimension")
        else:
            chain.activation(*self._activation_module(m, where), where)

    def _batchnorm(self, m, where):
        """(scale, shift) of a BatchNorm1d at inference: (x - mean) / sqrt(var + eps) * w + b."""
        if m.training:
            raise ValueError(f"{where}: in training mode it normalises with batch statistics; "
                             "call model.eval() first")
        if m.running_mean is None or m.running_var is None:
            raise ValueError(f"{where}: has no running statistics (track_running_stats=False), "
                             "so it normalises with batch statistics even in eval mode")
        return _batchnorm_map(self._numpy(m.running_mean), self._numpy(m.running_var), m.eps,
                              None if m.weight is None else self._numpy(m.weight),
                              None if m.bias is None else self._numpy(m.bias))

    def _layer_norm(self, shape, weight, bias, eps, where):
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        if len(shape) != 1:
            raise ValueError(f"{where}: normalises over the last {len(shape)} dimensions; "
                             "fastmlp normalises each row's features")
        if self.chain.width is not None and shape[0] != self.chain.width:
            raise ValueError(f"{where}: normalises {shape[0]} features but receives "
                             f"{self.chain.width}")
        self.chain.width = shape[0]
        self.chain.layer_norm(None if weight is None else self._numpy(weight),
                              None if bias is None else self._numpy(bias), eps, where)

    def _activation_module(self, m, where):
        """(fastmlp name, params) of an activation module, or ValueError."""
        nn = self.nn
        simple = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SiLU: "silu",
                  nn.SELU: "selu", nn.Mish: "mish", nn.Hardswish: "hardswish",
                  nn.ReLU6: "relu6", nn.Softsign: "softsign"}
        for cls, name in simple.items():
            if _plain(m, cls):
                return name, {}
        if _plain(m, nn.Softmax) or _plain(m, nn.LogSoftmax):
            name = "softmax" if isinstance(m, nn.Softmax) else "log_softmax"
            return _over_rows(name, m.dim, where), {}
        if _plain(m, nn.LeakyReLU):
            return "leaky_relu", {"negative_slope": float(m.negative_slope)}
        if _plain(m, nn.ELU):
            return "elu", {"alpha": float(m.alpha)}
        if _plain(m, nn.CELU):
            return "celu", {"alpha": float(m.alpha)}
        if _plain(m, nn.GELU):
            return _gelu(m.approximate, where), {}
        if _plain(m, nn.Softplus):
            return "softplus", {"beta": float(m.beta), "threshold": float(m.threshold)}
        if _plain(m, nn.Hardsigmoid):
            return "hardsigmoid", dict(_HARDSIGMOID)
        if _plain(m, nn.Hardtanh):
            return "hardtanh", {"min_val": float(m.min_val), "max_val": float(m.max_val)}
        if _plain(m, nn.PReLU):
            return "prelu", {"slope": self._slope(m.weight, where)}
        if isinstance(m, nn.Module) and type(m).__module__.startswith("torch.nn"):
            raise ValueError(f"{where}: unsupported module; supported: {SUPPORTED}")
        raise ValueError(f"{where}: this module is called as a whole, so what it computes is "
                         f"unknown; supported: {SUPPORTED}")

    def _slope(self, weight, where):
        slope = self._numpy(weight).reshape(-1)
        if slope.size == 1:
            return float(slope[0])
        if self.chain.width is not None and slope.size != self.chain.width:
            raise ValueError(f"{where}: has {slope.size} slopes for {self.chain.width} features")
        return slope


DATA = object()  # the value of an fx node that holds the data
_HARDSIGMOID = {"alpha": 1.0 / 6.0, "beta": 0.5}  # PyTorch's: relu6(x + 3) / 6

_ARITHMETIC = {operator.add: "add", operator.iadd: "add", operator.sub: "sub",
               operator.isub: "sub", operator.mul: "mul", operator.imul: "mul",
               operator.truediv: "div", operator.itruediv: "div", operator.neg: "neg"}
_METHOD_ARITHMETIC = {"add": "add", "add_": "add", "sub": "sub", "sub_": "sub", "mul": "mul",
                      "mul_": "mul", "div": "div", "div_": "div", "neg": "neg"}


def _is_add(node):
    if node.op == "call_function":
        return node.target is operator.add or node.target is operator.iadd or \
            getattr(node.target, "__name__", "") == "add"
    return node.op == "call_method" and node.target in ("add", "add_")


def _reads_data(user):
    """Whether an fx user reads the data (x.size(0) and x.shape only read its shape)."""
    if user.op == "call_method" and user.target == "size":
        return False
    return not (user.op == "call_function" and user.target is getattr)


def _flat_args(args, kwargs):
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, (list, tuple)):
            yield from _flat_args(value, {})
        else:
            yield value


def _attribute(root, target):
    value = root
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _plain(module, cls):
    """True when ``module`` behaves as ``cls``: a subclass overriding forward may do anything."""
    return isinstance(module, cls) and type(module).forward is cls.forward


def _batchnorm_map(mean, var, eps, weight, bias):
    scale = 1.0 / np.sqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    return scale, shift


def _over_rows(name, dim, where):
    # Over the features of a (batch, features) input: dim -1 or 1, or None, which PyTorch
    # resolves to 1 for 2-D input.
    if dim not in (-1, 1, None):
        raise ValueError(f"{where}: {name} over dim={dim} is not over the features "
                         f"(fastmlp applies {name} over each row)")
    return name


def _gelu(approximate, where):
    names = {"none": "gelu", "tanh": "gelu_tanh"}
    if approximate not in names:
        raise ValueError(f"{where}: unknown approximate={approximate!r}")
    return names[approximate]


class _Arguments:
    """A call's arguments by position or keyword, the data first."""

    def __init__(self, args, kwargs, where):
        self.args, self.kwargs, self.where = args, dict(kwargs), where
        self.kwargs.pop("inplace", None)

    def get(self, index, name, default):
        if name in self.kwargs:
            return self.kwargs[name]
        return self.args[index] if index < len(self.args) else default

    def only(self, *names):
        """ValueError when the call passes arguments other than the data and ``names``."""
        extra = set(self.kwargs) - set(names)
        if extra or len(self.args) > 1 + len(names):
            raise ValueError(f"{self.where}: arguments beyond {', '.join(names) or 'the data'} "
                             "are not supported")


def _simple(name):
    def handler(reader, call, where):
        call.only()
        reader.chain.activation(name, {}, where)
    return handler


def _with(name, **defaults):
    """An activation whose parameters are the call's arguments after the data, in order."""
    def handler(reader, call, where):
        call.only(*defaults)
        params = {key: float(call.get(i + 1, key, default))
                  for i, (key, default) in enumerate(defaults.items())}
        reader.chain.activation(name, params, where)
    return handler


def _rows(name):
    def handler(reader, call, where):
        call.only("dim", "_stacklevel", "dtype")
        if call.get(3, "dtype", None) is not None:
            raise ValueError(f"{where}: casts its result to another dtype")
        reader.chain.activation(_over_rows(name, call.get(1, "dim", None), where), {}, where)
    return handler


def _clamp(reader, call, where):
    call.only("min", "max")
    low, high = call.get(1, "min", None), call.get(2, "max", None)
    for bound in (low, high):
        if bound is not None and np.size(bound) != 1:
            raise ValueError(f"{where}: clamps to per-feature bounds")
    params = {"min_val": -np.inf if low is None else float(low),
              "max_val": np.inf if high is None else float(high)}
    reader.chain.activation("hardtanh", params, where)


def _gelu_call(reader, call, where):
    call.only("approximate")
    reader.chain.activation(_gelu(call.get(1, "approximate", "none"), where), {}, where)


def _hardsigmoid(reader, call, where):
    call.only()
    reader.chain.activation("hardsigmoid", dict(_HARDSIGMOID), where)


def _prelu(reader, call, where):
    call.only("weight")
    reader.chain.activation("prelu", {"slope": reader._slope(call.get(1, "weight", None),
                                                              where)}, where)


def _linear(reader, call, where):
    call.only("weight", "bias")
    weight, bias = call.get(1, "weight", None), call.get(2, "bias", None)
    reader.chain.dense(reader._numpy(weight).T, None if bias is None else reader._numpy(bias),
                       where)


def _matmul(reader, call, where):
    call.only("other")
    reader.chain.dense(reader._numpy(call.get(1, "other", None)), None, where)


def _layer_norm(reader, call, where):
    call.only("normalized_shape", "weight", "bias", "eps")
    reader._layer_norm(call.get(1, "normalized_shape", None), call.get(2, "weight", None),
                       call.get(3, "bias", None), call.get(4, "eps", 1e-5), where)


def _batch_norm(reader, call, where):
    call.only("running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
    if call.get(5, "training", False):
        raise ValueError(f"{where}: in training mode it normalises with batch statistics; "
                         "call model.eval() first")
    mean, var = (reader._numpy(call.get(i, key, None))
                 for i, key in ((1, "running_mean"), (2, "running_var")))
    weight, bias = (call.get(i, key, None) for i, key in ((3, "weight"), (4, "bias")))
    reader.chain.affine(*_batchnorm_map(
        mean, var, call.get(7, "eps", 1e-5), None if weight is None else reader._numpy(weight),
        None if bias is None else reader._numpy(bias)), where)


def _dropout(reader, call, where):
    call.only("p", "training")
    if call.get(2, "training", True):
        raise ValueError(f"{where}: F.dropout with training=True drops values even in eval "
                         "mode; pass training=self.training")


def _flatten(reader, call, where):
    call.only("start_dim", "end_dim")
    if call.get(1, "start_dim", 0) not in (1, -1) or call.get(2, "end_dim", -1) != -1:
        raise ValueError(f"{where}: flattens the batch dimension (use start_dim=1)")


def _view(reader, call, where):
    shape = list(call.args[1:])
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = list(shape[0])
    shape = shape or list(call.kwargs.get("shape", call.kwargs.get("size", ())))
    width = reader.chain.width
    keeps_batch = len(shape) == 2 and (shape[0] is _Batch or shape[0] == -1)
    keeps_width = len(shape) == 2 and (shape[1] == -1 and shape[0] is _Batch
                                       or (width is not None and shape[1] == width))
    if not (keeps_batch and keeps_width):
        shown = ["x.size(0)" if d is _Batch else d for d in shape]
        raise ValueError(f"{where}: reshapes to {shown}, not (batch, features)")


def _no_op(reader, call, where):
    call.only()


_FUNCTIONS = {
    **{name: _simple(fn) for name, fn in (
        ("relu", "relu"), ("relu_", "relu"), ("tanh", "tanh"), ("sigmoid", "sigmoid"),
        ("silu", "silu"), ("selu", "selu"), ("mish", "mish"), ("hardswish", "hardswish"),
        ("relu6", "relu6"), ("softsign", "softsign"))},
    "leaky_relu": _with("leaky_relu", negative_slope=0.01),
    "elu": _with("elu", alpha=1.0),
    "celu": _with("celu", alpha=1.0),
    "softplus": _with("softplus", beta=1.0, threshold=20.0),
    "hardtanh": _with("hardtanh", min_val=-1.0, max_val=1.0),
    "clamp": _clamp, "clip": _clamp,
    "gelu": _gelu_call,
    "hardsigmoid": _hardsigmoid,
    "prelu": _prelu,
    "softmax": _rows("softmax"), "log_softmax": _rows("log_softmax"),
    "linear": _linear, "matmul": _matmul,
    "layer_norm": _layer_norm, "batch_norm": _batch_norm,
    "dropout": _dropout, "alpha_dropout": _dropout,
    "flatten": _flatten, "view": _view, "reshape": _view,
    "contiguous": _no_op, "clone": _no_op,
}


__all__ = ["from_torch"]
