"""Convert an ONNX model whose graph is a chain of dense layers and activations to a Network.

The graph is walked from its one data input to its one output. Every step must consume the
current value and constants only (initializers, Constant nodes, Identity of constants):

- Gemm (transA=0, any transB / alpha / beta, constant C) and MatMul by a constant 2-D matrix
  start a dense layer; Add / Sub / Mul / Div by a per-feature constant and
  BatchNormalization (inference) are affine maps (a bias-like Add joins the dense layer);
- Relu, Tanh, Sigmoid, Softmax / LogSoftmax over the last axis, LeakyRelu, PRelu, Elu, Celu,
  Selu, Gelu, Mish, Softplus, Softsign, HardSwish, HardSigmoid and Clip are activations;
  LayerNormalization a layer norm; ai.onnx.ml Scaler an affine map; Identity, Dropout
  (inference), Flatten(axis=1), a Reshape that keeps (batch, features) and a Cast to the
  input's type are no-ops; Identity / Cast / Transpose of a constant are evaluated at load
  time; ``Add(x, f(x))`` is a residual block;
- a classifier graph as skl2onnx writes it (label and probabilities outputs, ZipMap or not,
  the binary ``[1 - p, p]`` columns) gives an ``MLPClassifierModel`` instead of a Network;
- two multi-node patterns PyTorch's exporters write are recognised: SiLU as
  ``Mul(x, Sigmoid(x))`` and Softplus with a threshold as
  ``Where(Greater(beta*x, threshold), x, Softplus(beta*x) / beta)``.

Anything else -- an unknown op, a weight computed at run time, a branch -- is refused with a
ValueError naming the node.
"""

import os

import numpy as np

from ._chain import DenseChain, require

_FLOAT_TYPES = {1: np.dtype(np.float32), 11: np.dtype(np.float64)}  # TensorProto.FLOAT, DOUBLE
_DEFAULT_DOMAINS = ("", "ai.onnx")
_ML_DOMAIN = "ai.onnx.ml"
# Ops of constants evaluated at load time, and the element types a Cast of one may produce.
_FOLDED = ("Identity", "Cast", "Transpose")
_CAST_TYPES = {1: np.float32, 11: np.float64, 10: np.float16, 6: np.int32, 7: np.int64}
# Float attributes are 32-bit in ONNX, defaults included: runtimes use these values.
_FLOAT_ATTRIBUTE_001 = float(np.float32(0.01))
_FLOAT_ATTRIBUTE_1E_5 = float(np.float32(1e-5))
_FLOAT_ATTRIBUTE_02 = float(np.float32(0.2))
_SELU_ALPHA = float(np.float32(1.6732632423543772))
_SELU_GAMMA = float(np.float32(1.0507009873554805))


def from_onnx(model):
    """Returns a :class:`fastmlp.Network` computing the ONNX model on (batch, features) input.

    ``model`` is a path, the serialized bytes, or an ``onnx.ModelProto``. The dtype is the
    input's element type (float or double). Anything the graph holds that fastmlp cannot
    convert raises ValueError naming the node (and the file, for a path).
    """
    onnx = require("onnx", "onnx", "from_onnx")
    proto = _load(model, onnx)
    try:
        return _Walker(proto, onnx).model()
    except ValueError as exc:
        if not isinstance(model, (str, os.PathLike)):
            raise
        raise ValueError(f"{os.fspath(model)}: {exc}") from exc


def _load(model, onnx):
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        load, source = onnx.load_from_string, "the bytes given"
        model = bytes(model)
    elif isinstance(model, (str, os.PathLike)):
        load, source = onnx.load, os.fspath(model)
    else:
        raise TypeError(
            f"from_onnx expects a path, bytes or onnx.ModelProto, got {type(model).__name__}"
        )
    try:
        return load(model)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # protobuf's DecodeError and friends: the file is not ONNX
        raise ValueError(f"{source} is not a readable ONNX model: {exc}") from exc


def _where(node):
    return f"node {node.name or '<unnamed>'!r} ({node.op_type})"


class _Attributes(dict):
    """A node's attributes; ``get(name, default)`` insists on the type of the default.

    ONNX types every attribute (alpha is a FLOAT, transB an INT, approximate a STRING), and a
    file is free to lie: a value of another type is refused naming the node, instead of
    failing somewhere in the arithmetic. An INT is accepted where a FLOAT is expected."""

    def __init__(self, values, where):
        super().__init__(values)
        self.where = where

    def get(self, name, default=None):
        if name not in self or default is None:
            return super().get(name, default)
        value = self[name]
        if isinstance(default, float) and type(value) is int:
            return float(value)
        if type(value) is not type(default):
            kind = _KINDS.get(type(value), type(value).__name__)
            raise ValueError(f"{self.where}: attribute {name!r} is of type {kind}, expected "
                             f"{_KINDS[type(default)]}")
        return value


_KINDS = {float: "FLOAT", int: "INT", bytes: "STRING", list: "list"}


class _Walker:
    """Follows the graph's value chain from input to output, feeding a DenseChain."""

    def __init__(self, proto, onnx):
        self.onnx = onnx
        self.graph = proto.graph
        self.opset = next(
            (op.version for op in proto.opset_import if op.domain in _DEFAULT_DOMAINS), 1
        )
        self.constants = self._constants()
        self.consumers = {}
        self.producer = {}
        for node in self.graph.node:
            if not self._is_constant_node(node):
                for name in dict.fromkeys(node.input):  # once per node, even for Mul(x, x)
                    self.consumers.setdefault(name, []).append(node)
                for name in node.output:
                    self.producer[name] = node
        self.visited = set()

    # -- constants ------------------------------------------------------------------------

    def _constants(self):
        from onnx import numpy_helper

        constants = {}
        try:
            for init in self.graph.initializer:
                constants[init.name] = numpy_helper.to_array(init)
            for node in self.graph.node:  # nodes are in topological order
                if not node.output or not node.output[0] or node.domain not in _DEFAULT_DOMAINS:
                    continue  # _step refuses it if the chain reaches it
                if node.op_type == "Constant":
                    constants[node.output[0]] = self._constant_value(node, numpy_helper)
                elif node.op_type in _FOLDED and node.input[:1] and node.input[0] in constants:
                    constants[node.output[0]] = self._fold(node, constants[node.input[0]])
        except ValueError:
            raise
        except Exception as exc:  # e.g. external data that was not loaded
            raise ValueError(f"cannot read the model's constants: {exc}") from exc
        return constants

    def _constant_value(self, node, numpy_helper):
        attrs = self._attrs(node)
        if "value" in attrs:
            return numpy_helper.to_array(attrs["value"])
        for key in ("value_float", "value_floats", "value_int", "value_ints"):
            if key in attrs:
                return np.asarray(attrs[key])
        raise ValueError(f"{_where(node)}: unsupported kind of constant {sorted(attrs)}")

    def _fold(self, node, value):
        """The value of Identity / Cast / Transpose of a constant, computed at load time (as
        the PyTorch exporter writes transposed weights, and float16-stored ones cast up)."""
        attrs = self._attrs(node)
        if node.op_type == "Cast":
            to = attrs.get("to")
            if to not in _CAST_TYPES:
                raise ValueError(f"{_where(node)}: casts a constant to element type {to}; "
                                 "fastmlp reads FLOAT, DOUBLE, FLOAT16 and integer constants")
            return np.asarray(value).astype(_CAST_TYPES[to])
        if node.op_type == "Transpose":
            perm = attrs.get("perm")
            return np.transpose(value, None if perm is None else list(perm))
        return value

    def _is_constant_node(self, node):
        return node.op_type in ("Constant", *_FOLDED) and bool(node.output) \
            and all(name in self.constants for name in node.output)

    def _const(self, node, index, what):
        """The constant input ``index`` of ``node``, or ValueError."""
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.constants:
            raise ValueError(
                f"{_where(node)}: {what} ({name!r}) is not a constant (initializer or Constant "
                "node); fastmlp needs fixed weights"
            )
        return self.constants[name]

    def _feature_constant(self, node, index, what):
        """A constant that broadcasts per feature over (batch, features): a scalar, (M,), (1, M)."""
        value = np.asarray(self._const(node, index, what))
        if value.ndim > 2 or (value.ndim == 2 and value.shape[0] != 1):
            raise ValueError(
                f"{_where(node)}: {what} of shape {value.shape} is not a per-feature constant"
            )
        return self._float(value.reshape(-1) if value.size > 1 else value.reshape(()), node, what)

    def _float(self, value, node, what):
        if value.dtype.kind == "O" and value.shape == () and value.item() is None:
            raise ValueError(f"{_where(node)}: {what} missing (the node has no such input)")
        if value.dtype.kind != "f":
            raise ValueError(f"{_where(node)}: {what} has dtype {value.dtype}, expected floats")
        return value

    def _ints(self, node, index, what):
        """The constant input ``index`` of ``node`` as a list of integers, or ValueError."""
        value = np.asarray(self._const(node, index, what))
        if value.dtype.kind not in "iu":
            raise ValueError(f"{_where(node)}: {what} must be integers"
                             + (" (it is missing)" if value.dtype.kind == "O" else
                                f", got dtype {value.dtype}"))
        return [int(d) for d in value.reshape(-1)]

    @staticmethod
    def _attrs(node):
        from onnx import helper

        try:
            values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        except Exception as exc:  # an attribute of undefined or unknown type
            raise ValueError(f"{_where(node)}: unreadable attribute ({exc})") from exc
        return _Attributes(values, _where(node))

    # -- the walk -------------------------------------------------------------------------

    def model(self):
        """The Network, or for a classifier graph (label and probabilities outputs) the
        MLPClassifierModel wrapping it."""
        if not self.graph.output:  # e.g. an empty file, which protobuf reads as a model
            raise ValueError("the graph has no outputs; only single-input, single-output "
                             "chains are supported")
        head = _ClassifierHead.find(self) if len(self.graph.output) == 2 else None
        if head is None:
            for node in self.graph.node:  # the likely reason two outputs are no classifier
                if (node.domain, node.op_type) == (_ML_DOMAIN, "Binarizer"):
                    self._ml_Binarizer(node, _where(node), {})
            return self.network(self.graph.output[0].name, classifier=False)
        self.visited.update(id(n) for n in head.nodes)
        for readers in self.consumers.values():
            readers[:] = [n for n in readers if id(n) not in self.visited]
        return head.classifier(self.network(head.probabilities, classifier=True))

    def network(self, output, classifier):
        data = self._endpoints(classifier)
        self.chain = DenseChain(width=self.width)
        value = data
        # Each step consumes at least one node never visited before (a node met twice is a
        # cycle), so the walk ends after at most one step per node.
        while value != output:
            value = self._step(value)
        stray = [n for n in self.graph.node
                 if id(n) not in self.visited and not self._is_constant_node(n)]
        if stray:
            raise ValueError(
                f"{_where(stray[0])}: not on the chain from the input to the output "
                "(only graphs that are a single chain are supported)"
            )
        return self.chain.build(self.dtype, "the ONNX graph")

    def _endpoints(self, classifier):
        inputs = [i for i in self.graph.input if i.name not in self.constants]
        if len(inputs) != 1 or (len(self.graph.output) != 1 and not classifier):
            raise ValueError(
                f"the graph has {len(inputs)} data inputs and {len(self.graph.output)} outputs; "
                "only single-input, single-output chains are supported, and classifiers "
                "with a label and a probabilities output (as skl2onnx writes them)"
            )
        tensor_type = inputs[0].type.tensor_type
        if tensor_type.elem_type not in _FLOAT_TYPES:
            names = self.onnx.TensorProto.DataType
            name = names.Name(tensor_type.elem_type) \
                if tensor_type.elem_type in names.values() else f"{tensor_type.elem_type} (unknown)"
            raise ValueError(f"input {inputs[0].name!r} has element type {name}; "
                             "fastmlp computes in FLOAT or DOUBLE")
        self.dtype = _FLOAT_TYPES[tensor_type.elem_type]
        self.width = None
        if tensor_type.HasField("shape"):
            dims = tensor_type.shape.dim
            if len(dims) != 2:
                raise ValueError(f"input {inputs[0].name!r} has rank {len(dims)}; fastmlp "
                                 "networks take (batch, features)")
            self.width = dims[1].dim_value or None
        return inputs[0].name

    def _step(self, value):
        """Consumes the node(s) reading ``value``; returns the value they produce."""
        consumers = self.consumers.get(value, [])
        if not consumers:
            raise ValueError(f"value {value!r} is not consumed by any node and is not the "
                             "graph output")
        if len(consumers) > 1:
            return self._pattern(value, consumers)
        node = consumers[0]
        self._visit([node])
        if not node.output or not node.output[0]:
            raise ValueError(f"{_where(node)}: has no output; the chain cannot continue")
        if node.domain not in _DEFAULT_DOMAINS + (_ML_DOMAIN,):
            raise ValueError(f"{_where(node)}: operator of domain {node.domain!r} is unknown")
        prefix = "_ml_" if node.domain == _ML_DOMAIN else "_op_"
        handler = getattr(self, f"{prefix}{node.op_type}", None)
        if handler is None:
            domain = f" of domain {node.domain!r}" if node.domain == _ML_DOMAIN else ""
            raise ValueError(f"{_where(node)}: unsupported operator{domain}; "
                             f"supported: {SUPPORTED}")
        # The data must be the first input and every other input a constant; Add and Mul
        # commute, so there the data may come second.
        first = 1 if node.op_type in ("Add", "Mul") and node.input[1:2] == [value] else 0
        if node.input[first] != value or list(node.input).count(value) != 1:
            raise ValueError(f"{_where(node)}: the data must be its first input and every "
                             "other input a constant")
        handler(node, _where(node), self._attrs(node))
        return node.output[0]

    def _visit(self, nodes):
        """Marks nodes as consumed; meeting one a second time means the graph has a cycle."""
        for node in nodes:
            if id(node) in self.visited:
                raise ValueError(f"{_where(node)}: the graph has a cycle through this node; "
                                 "only chains from the input to the output are supported")
            self.visited.add(id(node))

    # -- operators (each receives a node whose first input is the data) ------------------

    def _op_Gemm(self, node, where, attrs):
        if attrs.get("transA", 0):
            raise ValueError(f"{where}: transA=1 transposes the data (batch x features)")
        b = self._float(np.asarray(self._const(node, 1, "B")), node, "B")
        if b.ndim != 2:
            raise ValueError(f"{where}: B has shape {b.shape}, expected a matrix")
        weights = (b.T if attrs.get("transB", 0) else b).astype(np.float64)
        alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
        if alpha != 1.0:
            weights = weights * alpha
        c = None
        if len(node.input) > 2 and node.input[2]:
            c = self._feature_constant(node, 2, "C").astype(np.float64) * beta
        self.chain.dense(weights, c, where)

    def _op_MatMul(self, node, where, attrs):
        w = self._float(np.asarray(self._const(node, 1, "the second input")), node, "weights")
        if w.ndim != 2:
            raise ValueError(f"{where}: weights have shape {w.shape}, expected a matrix")
        self.chain.dense(w, None, where)

    def _other(self, node):
        """Index of the constant operand of Add / Mul, whose data input may be either."""
        return 0 if node.input[0] in self.constants else 1

    def _op_Add(self, node, where, attrs):
        addend = self._feature_constant(node, self._other(node), "the addend")
        self.chain.affine(None, addend, where)

    def _op_Sub(self, node, where, attrs):
        self.chain.affine(None, -self._feature_constant(node, 1, "the subtrahend"), where)

    def _op_Mul(self, node, where, attrs):
        factor = self._feature_constant(node, self._other(node), "the factor")
        self.chain.affine(factor, None, where)

    def _op_Div(self, node, where, attrs):
        # x / c becomes x * (1/c): equal up to one rounding.
        self.chain.affine(1.0 / self._feature_constant(node, 1, "the divisor"), None, where)

    def _op_BatchNormalization(self, node, where, attrs):
        if attrs.get("training_mode", 0) or any(self.consumers.get(o) for o in node.output[1:]):
            raise ValueError(f"{where}: training mode (batch statistics) is not supported")
        scale, bias, mean, var = (
            self._feature_constant(node, i, what).astype(np.float64)
            for i, what in enumerate(("scale", "B", "input_mean", "input_var"), start=1)
        )
        factor = scale / np.sqrt(var + attrs.get("epsilon", _FLOAT_ATTRIBUTE_1E_5))
        self.chain.affine(factor, bias - mean * factor, where)

    def _op_Relu(self, node, where, attrs):
        self.chain.activation("relu", {}, where)

    def _op_Tanh(self, node, where, attrs):
        self.chain.activation("tanh", {}, where)

    def _op_Sigmoid(self, node, where, attrs):
        self.chain.activation("sigmoid", {}, where)

    def _op_Softmax(self, node, where, attrs):
        # Opset >= 13 defaults to axis -1; older opsets to 1 and coerce the input to 2-D at
        # the axis. On a (batch, features) input both 1 and -1 mean softmax over each row.
        self._check_row_axis(node, where, attrs, "softmax")
        self.chain.activation("softmax", {}, where)

    def _check_row_axis(self, node, where, attrs, name):
        axis = attrs.get("axis", -1 if self.opset >= 13 else 1)
        if axis not in (1, -1):
            raise ValueError(f"{where}: {name} over axis {axis} is not over the features "
                             f"(fastmlp applies {name} over each row)")

    def _op_LeakyRelu(self, node, where, attrs):
        alpha = attrs.get("alpha", _FLOAT_ATTRIBUTE_001)
        self.chain.activation("leaky_relu", {"negative_slope": alpha}, where)

    def _op_Elu(self, node, where, attrs):
        self.chain.activation("elu", {"alpha": attrs.get("alpha", 1.0)}, where)

    def _op_Gelu(self, node, where, attrs):
        approximate = attrs.get("approximate", b"none").decode()
        names = {"none": "gelu", "tanh": "gelu_tanh"}
        if approximate not in names:
            raise ValueError(f"{where}: unknown approximate={approximate!r}")
        self.chain.activation(names[approximate], {}, where)

    def _op_Softplus(self, node, where, attrs):
        # ONNX Softplus is log(exp(x) + 1) everywhere: no threshold.
        self.chain.activation("softplus", {"beta": 1.0, "threshold": float("inf")}, where)

    def _op_Selu(self, node, where, attrs):
        # fastmlp's selu has PyTorch's constants; ONNX's defaults are their float32 roundings.
        alpha, gamma = attrs.get("alpha", _SELU_ALPHA), attrs.get("gamma", _SELU_GAMMA)
        if (alpha, gamma) != (_SELU_ALPHA, _SELU_GAMMA):
            raise ValueError(f"{where}: alpha={alpha}, gamma={gamma} are not SELU's constants "
                             "(fastmlp's selu has only those)")
        self.chain.activation("selu", {}, where)

    def _op_Celu(self, node, where, attrs):
        self.chain.activation("celu", {"alpha": attrs.get("alpha", 1.0)}, where)

    def _op_Mish(self, node, where, attrs):
        self.chain.activation("mish", {}, where)

    def _op_HardSwish(self, node, where, attrs):
        self.chain.activation("hardswish", {}, where)

    def _op_HardSigmoid(self, node, where, attrs):
        params = {"alpha": attrs.get("alpha", _FLOAT_ATTRIBUTE_02),
                  "beta": attrs.get("beta", 0.5)}
        self.chain.activation("hardsigmoid", params, where)

    def _op_Clip(self, node, where, attrs):
        # Opset >= 11 takes the bounds as optional inputs, older opsets as attributes.
        if self.opset >= 11:
            low, high = (self._const(node, i, what) for i, what in ((1, "min"), (2, "max")))
        else:
            low, high = attrs.get("min"), attrs.get("max")
        bounds = []
        for value, default, what in ((low, -np.inf, "min"), (high, np.inf, "max")):
            value = np.asarray(default if value is None else value)
            if value.size != 1:
                raise ValueError(f"{where}: {what} has shape {value.shape}; fastmlp clips every "
                                 "feature to the same bounds")
            bounds.append(float(value.reshape(())))
        self.chain.activation("hardtanh", {"min_val": bounds[0], "max_val": bounds[1]}, where)

    def _op_PRelu(self, node, where, attrs):
        slope = self._feature_constant(node, 1, "the slope")
        value = float(slope) if slope.ndim == 0 else slope.astype(np.float64)
        self.chain.activation("prelu", {"slope": value}, where)

    def _op_Softsign(self, node, where, attrs):
        self.chain.activation("softsign", {}, where)

    def _op_LogSoftmax(self, node, where, attrs):
        self._check_row_axis(node, where, attrs, "log_softmax")
        self.chain.activation("log_softmax", {}, where)

    def _op_LayerNormalization(self, node, where, attrs):
        if attrs.get("axis", -1) not in (-1, 1):
            raise ValueError(f"{where}: normalises from axis {attrs['axis']}, not over each "
                             "row's features")
        if any(self.consumers.get(o) for o in node.output[1:] if o):
            raise ValueError(f"{where}: its mean / inverse deviation outputs are used")
        weight = self._feature_constant(node, 1, "scale")
        bias = self._feature_constant(node, 2, "B") if len(node.input) > 2 and node.input[2] \
            else None
        eps = attrs.get("epsilon", _FLOAT_ATTRIBUTE_1E_5)
        self.chain.layer_norm(weight, bias, eps, where)

    def _op_Cast(self, node, where, attrs):
        to = attrs.get("to")
        if _FLOAT_TYPES.get(to) != self.dtype:
            name = self.onnx.TensorProto.DataType.Name(to) if isinstance(to, int) else to
            raise ValueError(f"{where}: casts the data to {name}; fastmlp computes the whole "
                             f"graph in its input's type ({self.dtype.name})")

    def _ml_Scaler(self, node, where, attrs):
        # (x - offset) * scale; the output is FLOAT whatever the input.
        if self.dtype != np.float32:
            raise ValueError(f"{where}: outputs FLOAT, so this {self.dtype.name} graph would "
                             "compute in two precisions")
        offset = np.asarray(attrs.get("offset", [0.0]), dtype=np.float64)
        scale = np.asarray(attrs.get("scale", [1.0]), dtype=np.float64)
        self.chain.affine(scale, -offset * scale, where)

    def _ml_Binarizer(self, node, where, attrs):
        raise ValueError(f"{where}: thresholds the outputs, as skl2onnx writes a multilabel "
                         "classifier's labels; multilabel graphs are not supported (export "
                         "the probabilities only, or use from_sklearn on the estimator)")

    def _op_Identity(self, node, where, attrs):
        pass

    def _op_Dropout(self, node, where, attrs):
        training = self._const(node, 2, "training_mode")
        if (training is not None and bool(training)) or any(
            self.consumers.get(o) for o in node.output[1:]
        ):
            raise ValueError(f"{where}: dropout in training mode (or its mask used)")

    def _op_Flatten(self, node, where, attrs):
        if attrs.get("axis", 1) not in (1, -1):
            raise ValueError(f"{where}: axis {attrs['axis']} merges the batch dimension")

    def _op_Reshape(self, node, where, attrs):
        shape = self._ints(node, 1, "the shape")
        copy = not attrs.get("allowzero", 0)  # 0 copies the input's dimension
        keeps_batch = len(shape) == 2 and (shape[0] == -1 or (shape[0] == 0 and copy))
        keeps_width = len(shape) == 2 and (
            (self.chain.width is not None and shape[1] == self.chain.width)
            or (shape[1] == 0 and copy)
            or (shape[1] == -1 and shape[0] == 0 and copy)
        )
        if not (keeps_batch and keeps_width):
            raise ValueError(f"{where}: reshape to {shape} does not keep (batch, features)")

    # -- multi-node patterns --------------------------------------------------------------

    def _pattern(self, value, consumers):
        residual = self._residual(value, consumers)
        if residual is not None:
            return residual
        for match in (self._silu, self._thresholded_softplus):
            found = match(value, consumers)
            if found is not None:
                nodes, output, (name, params) = found
                self._check_closed(value, nodes, output)
                self._visit(nodes)
                self.chain.activation(name, params, _where(nodes[-1]))
                return output
        names = ", ".join(_where(n) for n in consumers)
        hint = ""
        if self._reaches(consumers, "Erf"):
            hint = (" (this looks like a GELU exported in pieces: export with opset_version "
                    ">= 20 to get one Gelu node)")
        raise ValueError(
            f"the graph branches at value {value!r} (read by {names}) and this is not a "
            f"residual Add or a recognised activation pattern; only chains are supported{hint}"
        )

    def _reaches(self, nodes, op_type, depth=3):
        """Whether an ``op_type`` node is among ``nodes`` or a few steps after them."""
        for _ in range(depth):
            if any(n.op_type == op_type for n in nodes):
                return True
            nodes = [r for n in nodes for o in n.output for r in self.consumers.get(o, [])]
        return False

    def _residual(self, value, consumers):
        """``Add(x, f(x))``: walks f from ``value`` to the Add's other input; the Add's output."""
        adds = [n for n in consumers if n.op_type == "Add" and n.domain in _DEFAULT_DOMAINS
                and len(n.input) == 2 and not any(i in self.constants for i in n.input)]
        if len(consumers) != 2 or len(adds) != 1 or list(adds[0].input).count(value) != 1:
            return None
        add = adds[0]
        if not add.output or not add.output[0]:
            raise ValueError(f"{_where(add)}: has no output; the chain cannot continue")
        end = add.input[1] if add.input[0] == value else add.input[0]
        mark = self.chain.mark()
        self.consumers[value] = [n for n in consumers if n is not add]
        current = value
        while current != end:
            current = self._step(current)
        if self.consumers.get(end) != [add]:
            raise ValueError(f"{_where(add)}: adds a residual branch whose end {end!r} is "
                             "also read elsewhere; only chains are supported")
        self._visit([add])
        self.chain.residual_since(mark, _where(add))
        return add.output[0]

    def _check_closed(self, value, nodes, output):
        """Nothing outside the pattern reads its inner values."""
        inside = {id(n) for n in nodes}
        inner = {value} | {o for n in nodes for o in n.output if o != output}
        for name in inner:
            for reader in self.consumers.get(name, []):
                if id(reader) not in inside:
                    raise ValueError(f"{_where(reader)}: reads {name!r} from inside an "
                                     "activation pattern; only chains are supported")

    def _node(self, name, op_type, n_inputs):
        """The standard-domain node of ``op_type`` with ``n_inputs`` inputs producing ``name``,
        if that is its producer."""
        node = self.producer.get(name)
        if node is None or node.op_type != op_type or node.domain not in _DEFAULT_DOMAINS \
                or len(node.input) != n_inputs or not node.output:
            return None
        return node

    def _silu(self, value, consumers):
        """x * Sigmoid(x)."""
        for mul in consumers:
            if mul.op_type != "Mul" or len(mul.input) != 2 or value not in mul.input \
                    or not mul.output:
                continue
            other = mul.input[1] if mul.input[0] == value else mul.input[0]
            sigmoid = self._node(other, "Sigmoid", 1)
            if sigmoid is not None and list(sigmoid.input) == [value]:
                return [sigmoid, mul], mul.output[0], ("silu", {})
        return None

    def _thresholded_softplus(self, value, consumers):
        """PyTorch's softplus: Where(beta*x > threshold, x, Softplus(beta*x) / beta)."""
        for where in consumers:
            if where.op_type != "Where" or len(where.input) != 3 or where.input[1] != value \
                    or not where.output:
                continue
            greater = self._node(where.input[0], "Greater", 2)
            if greater is None or greater.input[1] not in self.constants:
                continue
            threshold = np.asarray(self.constants[greater.input[1]])
            scaled, nodes = greater.input[0], [greater]
            beta, result = np.float64(1.0), where.input[2]
            if scaled != value:  # beta != 1: Div(Softplus(Mul(x, beta)), beta)
                mul, div = self._node(scaled, "Mul", 2), self._node(result, "Div", 2)
                if mul is None or div is None or mul.input[0] != value:
                    continue
                beta = self.constants.get(mul.input[1])
                if beta is None or not np.array_equal(self.constants.get(div.input[1]), beta):
                    continue
                result = div.input[0]
                nodes += [mul, div]
            softplus = self._node(result, "Softplus", 1)
            if softplus is None or list(softplus.input) != [scaled]:
                continue
            if np.size(beta) != 1 or threshold.size != 1:
                continue
            params = {"beta": float(np.reshape(beta, ())), "threshold": float(threshold.item())}
            return nodes + [softplus, where], where.output[0], ("softplus", params)
        return None


class _ClassifierHead:
    """The nodes after a classifier's probabilities, as skl2onnx writes them:

    - labels: ``ArgMax(P, axis=1)`` -> ``ArrayFeatureExtractor(classes, .)`` -> Reshape /
      Cast / Identity -> the label output;
    - probabilities: P itself, or ``ZipMap(P)`` (a sequence of {label: probability} maps),
      through Identity nodes;
    - a binary classifier's P is ``Concat(Sub(1, p), p)`` of its one logistic column p.
    """

    def __init__(self, nodes, probabilities, classes, target_type):
        self.nodes, self.probabilities = nodes, probabilities
        self.classes, self.target_type = classes, target_type

    @classmethod
    def find(cls, walker):
        """The head of the graph's two outputs, or None when they are not a classifier's."""
        outputs = [o.name for o in walker.graph.output]
        for label_output, proba_output in (outputs, outputs[::-1]):  # noqa: B007 (after the loop)
            nodes = []
            found = cls._labels(walker, label_output, nodes)
            if found is not None:
                break
        else:
            return None
        classes, argmax_input = found
        proba = cls._through(walker, proba_output, ("Identity",), nodes)
        zipmap = walker.producer.get(proba)
        if zipmap is not None and (zipmap.domain, zipmap.op_type) == (_ML_DOMAIN, "ZipMap"):
            nodes.append(zipmap)
            proba = cls._through(walker, zipmap.input[0], ("Identity",), nodes)
        if cls._through(walker, argmax_input, ("Identity",), nodes) != proba:
            return None
        binary = cls._binary(walker, proba)
        if binary is not None:
            nodes += binary[1]
            return cls(nodes, binary[0], classes, "binary")
        return cls(nodes, proba, classes, "multiclass")

    @staticmethod
    def _through(walker, name, op_types, nodes):
        """Follows ``name`` back through standard nodes of ``op_types``, collecting them."""
        while True:
            node = walker.producer.get(name)
            if node is None or node.op_type not in op_types or \
                    node.domain not in _DEFAULT_DOMAINS or name in walker.constants:
                return name
            nodes.append(node)
            name = node.input[0]

    @classmethod
    def _labels(cls, walker, output, nodes):
        """(classes, ArgMax's input) when ``output`` is the labels of an ArgMax."""
        name = cls._through(walker, output, ("Identity", "Cast", "Reshape"), nodes)
        extractor = walker.producer.get(name)
        if extractor is None or (extractor.domain, extractor.op_type) != \
                (_ML_DOMAIN, "ArrayFeatureExtractor") or extractor.input[0] not in walker.constants:
            return None
        argmax = walker._node(extractor.input[1], "ArgMax", 1)
        if argmax is None or walker._attrs(argmax).get("axis", 0) not in (1, -1) or \
                walker._attrs(argmax).get("select_last_index", 0):
            return None
        nodes += [extractor, argmax]
        classes = np.asarray(walker.constants[extractor.input[0]]).reshape(-1)
        if classes.dtype == object:  # string labels are stored as bytes
            classes = np.array([c.decode() if isinstance(c, bytes) else c for c in classes])
        return classes, argmax.input[0]

    @staticmethod
    def _binary(walker, proba):
        """(p, nodes) when ``proba`` is ``Concat(Sub(1, p), p)`` over the features."""
        concat = walker._node(proba, "Concat", 2)
        if concat is None or len(concat.input) != 2 or \
                walker._attrs(concat).get("axis") not in (1, -1):
            return None
        negative, p = concat.input
        sub = walker._node(negative, "Sub", 2)
        if sub is None or list(sub.input[1:]) != [p] or sub.input[0] not in walker.constants:
            return None
        unity = np.asarray(walker.constants[sub.input[0]])
        if unity.size != 1 or unity.reshape(()) != 1:
            return None
        return p, [concat, sub]

    def classifier(self, network):
        from .sklearn import MLPClassifierModel

        expected = 1 if self.target_type == "binary" else len(self.classes)
        if network.n_outputs != expected or len(self.classes) < 2:
            raise ValueError(
                f"the graph's probabilities have {network.n_outputs} columns for "
                f"{len(self.classes)} classes ({self.target_type}); expected {expected}"
            )
        return MLPClassifierModel(network, self.classes, self.target_type)


SUPPORTED = (
    "Gemm, MatMul, Add, Sub, Mul, Div (by per-feature constants), BatchNormalization, "
    "LayerNormalization, Relu, Tanh, Sigmoid, Softmax, LogSoftmax, LeakyRelu, PRelu, Elu, "
    "Celu, Selu, Gelu, Mish, Softplus, Softsign, HardSwish, HardSigmoid, Clip, Identity, "
    "Dropout, Flatten, Reshape, Cast (to the input's type), Add(x, f(x)), and ai.onnx.ml "
    "Scaler"
)

__all__ = ["from_onnx"]
