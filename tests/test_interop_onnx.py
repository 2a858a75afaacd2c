"""from_onnx: hand-built graphs checked against onnxruntime / the ONNX reference evaluator,
models exported by both PyTorch exporters, and every refusal."""
import io
import math
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import fastmlp  # noqa: E402
from fastmlp.interop import from_onnx  # noqa: E402

DTYPES = [np.float32, np.float64]
ELEM = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE}


def tolerance(dtype):
    return 1e-5 if dtype == np.float32 else 1e-12


def make_model(nodes, initializers, dtype=np.float32, n_inputs=4, opset=20, input_dims=None,
               outputs=("y",), check=True):
    """A model from nodes and {name: array} initializers; input 'x' is (batch, n_inputs)."""
    dims = input_dims if input_dims is not None else ["batch", n_inputs]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", ELEM[dtype], dims)],
        [helper.make_tensor_value_info(name, ELEM[dtype], [None, None]) for name in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if check:
        onnx.checker.check_model(model)
    return model


def reference(model, x):
    """onnxruntime for float32; the ONNX reference evaluator for float64, which onnxruntime
    lacks for several activations."""
    if x.dtype == np.float32:
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        return session.run(None, {model.graph.input[0].name: x})[0]
    return ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x})[0]


def check(model, dtype, expected=None, scale=3.0):
    net = from_onnx(model)
    assert net.dtype == dtype
    x = (np.random.default_rng(0).normal(size=(64, net.n_inputs)) * scale).astype(dtype)
    want = reference(model, x) if expected is None else expected(x)
    tol = tolerance(dtype)
    np.testing.assert_allclose(net(x), want, rtol=tol, atol=tol * np.abs(want).max())
    return net


def weights(dtype, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=s) / math.sqrt(s[0] if len(s) == 2 else 1)).astype(dtype)
            for s in shapes]


def two_layers(dtype, op, attrs, opset=20):
    """Gemm (transB=1, as PyTorch writes it) -> op -> MatMul + Add -> op."""
    w1, b1, w2, b2 = weights(dtype, (6, 4), (6,), (6, 3), (3,))
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], name="gemm", transB=1),
        helper.make_node(op, ["h"], ["a"], name="act1", **attrs),
        helper.make_node("MatMul", ["a", "W2"], ["m"], name="matmul"),
        helper.make_node("Add", ["m", "B2"], ["z"], name="add"),
        helper.make_node(op, ["z"], ["y"], name="act2", **attrs),
    ]
    return make_model(nodes, {"W1": w1, "B1": b1, "W2": w2, "B2": b2}, dtype, opset=opset)


def gelu(z, tanh=False):
    if tanh:
        return 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)))
    return 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))


ACTIVATIONS = [
    ("Relu", {}, "relu", {}),
    ("Tanh", {}, "tanh", {}),
    ("Sigmoid", {}, "sigmoid", {}),
    ("Softmax", {}, "softmax", {}),
    ("Softmax", {"axis": 1}, "softmax", {}),
    ("LeakyRelu", {}, "leaky_relu", {"negative_slope": float(np.float32(0.01))}),
    ("LeakyRelu", {"alpha": 0.25}, "leaky_relu", {"negative_slope": 0.25}),
    ("Elu", {}, "elu", {"alpha": 1.0}),
    ("Elu", {"alpha": 0.5}, "elu", {"alpha": 0.5}),
    ("Gelu", {}, "gelu", {}),
    ("Gelu", {"approximate": "tanh"}, "gelu_tanh", {}),
    ("Softplus", {}, "softplus", {"beta": 1.0, "threshold": math.inf}),
    ("Identity", {}, "identity", {}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("op, attrs, name, params", ACTIVATIONS, ids=lambda v: str(v))
def test_activation_ops(dtype, op, attrs, name, params):
    model = two_layers(dtype, op, attrs)
    expected = None
    if op == "Gelu" and dtype == np.float64:  # the reference evaluator's Gelu is not float64-exact
        w1, b1, w2, b2 = weights(dtype, (6, 4), (6,), (6, 3), (3,))
        tanh = bool(attrs)
        expected = lambda x: gelu(gelu(x @ w1.T + b1, tanh) @ w2 + b2, tanh)  # noqa: E731
    net = check(model, dtype, expected, scale=10.0)  # large enough to reach softplus' far side
    assert net.activations == (name, name)
    assert net.activation_params[0] == (params or fastmlp.ACTIVATION_DEFAULTS[name])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("alpha, beta", [(1.0, 1.0), (0.5, 2.0), (-1.5, 0.0)])
@pytest.mark.parametrize("c_shape", [(3,), (1, 3), (), (1,), None], ids=str)
def test_gemm_attributes(dtype, trans_b, alpha, beta, c_shape):
    (w,) = weights(dtype, (3, 4) if trans_b else (4, 3))
    inits = {"W": w}
    inputs = ["x", "W"]
    if c_shape is not None:
        inits["C"] = np.random.default_rng(1).normal(size=c_shape).astype(dtype)
        inputs.append("C")
    node = helper.make_node("Gemm", inputs, ["y"], name="g", transB=trans_b, alpha=alpha,
                            beta=beta)
    net = check(make_model([node], inits, dtype), dtype)
    assert net.shapes == [(4, 3)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_matmul_with_elementwise_constants(dtype):
    w1, w2, b, s, d = weights(dtype, (4, 5), (5, 3), (5,), (5,), (1, 3), seed=2)
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["m"]),
        helper.make_node("Add", ["B", "m"], ["a"]),  # the data second: Add commutes
        helper.make_node("Mul", ["a", "S"], ["p"]),
        helper.make_node("Sub", ["p", "half"], ["q"]),  # a scalar
        helper.make_node("Tanh", ["q"], ["t"]),
        helper.make_node("Mul", ["two", "t"], ["u"]),  # after the activation: into the next
        helper.make_node("Add", ["u", "B"], ["v"]),
        helper.make_node("MatMul", ["v", "W2"], ["r"]),
        helper.make_node("Div", ["r", "D"], ["y"]),
    ]
    inits = {"W1": w1, "W2": w2, "B": b, "S": s, "D": np.abs(d) + 0.5,
             "half": np.array(0.5, dtype), "two": np.array([2.0], dtype)}
    net = check(make_model(nodes, inits, dtype, n_inputs=4), dtype)
    # The Add right after the MatMul is its bias; the other maps are Affine steps, so the
    # Tanh after them is an Activation step.
    assert [type(layer).__name__ for layer in net.layers] == [
        "Dense", "Affine", "Affine", "Activation", "Affine", "Affine", "Dense", "Affine"]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_weights_from_constant_nodes_and_identities(dtype):
    # PyTorch's TorchScript exporter reuses initializers through Identity nodes.
    w1, w2 = weights(dtype, (4, 3), (3, 2), seed=3)
    nodes = [
        helper.make_node("Constant", [], ["W1"], value=numpy_helper.from_array(w1)),
        helper.make_node("Identity", ["W2src"], ["W2"]),
        helper.make_node("Constant", [], ["B"], value_floats=[0.5, -0.5])
        if dtype == np.float32 else
        helper.make_node("Constant", [], ["B"], value=numpy_helper.from_array(
            np.array([0.5, -0.5]))),
        helper.make_node("MatMul", ["x", "W1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "W2", "B"], ["y"]),
    ]
    net = check(make_model(nodes, {"W2src": w2}, dtype), dtype)
    np.testing.assert_array_equal(net.weights[0], w1)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_batchnormalization_folding(dtype):
    rng = np.random.default_rng(4)
    w1, w2 = weights(dtype, (4, 5), (5, 2), seed=4)

    def bn_inputs(prefix, n):
        return {f"{prefix}s": rng.uniform(0.5, 1.5, n), f"{prefix}b": rng.uniform(-1, 1, n),
                f"{prefix}m": rng.uniform(-1, 1, n), f"{prefix}v": rng.uniform(0.5, 1.5, n)}

    def bn(prefix, x, y, **attrs):
        return helper.make_node("BatchNormalization", [x] + [prefix + k for k in "sbmv"], [y],
                                name=prefix, **attrs)

    inits = {"W1": w1, "W2": w2, **bn_inputs("first", 4), **bn_inputs("mid", 5),
             **bn_inputs("late", 5)}
    inits = {k: np.asarray(v, dtype) for k, v in inits.items()}
    nodes = [bn("first", "x", "n0"), helper.make_node("MatMul", ["n0", "W1"], ["h"]),
             bn("mid", "h", "n1", epsilon=1e-3), helper.make_node("Sigmoid", ["n1"], ["a"]),
             bn("late", "a", "n2", training_mode=0),
             helper.make_node("MatMul", ["n2", "W2"], ["y"])]
    net = check(make_model(nodes, inits, dtype), dtype)
    assert net.shapes == [(4, 5), (5, 2)]


@pytest.mark.parametrize("opset, attrs", [(11, {}), (11, {"axis": 1}), (11, {"axis": -1}),
                                          (13, {}), (13, {"axis": 1}), (20, {"axis": -1})])
def test_softmax_over_the_features_in_every_opset(opset, attrs):
    model = two_layers(np.float32, "Softmax", attrs, opset=opset)
    assert check(model, np.float32).activations == ("softmax", "softmax")


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axis", [0, -2])
def test_softmax_over_the_batch_is_refused(opset, axis):
    refusal(two_layers(np.float32, "Softmax", {"axis": axis}, opset=opset),
            "node 'act1' (Softmax)", f"axis {axis}")


@pytest.mark.parametrize("no_op", [
    helper.make_node("Flatten", ["x"], ["f"], axis=1),
    helper.make_node("Flatten", ["x"], ["f"]),
    helper.make_node("Reshape", ["x", "shape_keep"], ["f"]),
    helper.make_node("Reshape", ["x", "shape_infer"], ["f"]),
    helper.make_node("Reshape", ["x", "shape_copy"], ["f"]),
    helper.make_node("Identity", ["x"], ["f"]),
    helper.make_node("Dropout", ["x"], ["f"]),
    helper.make_node("Dropout", ["x", "ratio", "no"], ["f", "mask"]),
], ids=lambda n: f"{n.op_type}{list(n.input)[1:]}{len(n.attribute)}")
def test_no_op_nodes(no_op):
    (w,) = weights(np.float32, (4, 2))
    inits = {"W": w, "shape_keep": np.array([-1, 4]), "shape_infer": np.array([0, -1]),
             "shape_copy": np.array([-1, 0]), "ratio": np.array(0.5, np.float32),
             "no": np.array(False)}
    model = make_model([no_op, helper.make_node("MatMul", ["f", "W"], ["y"])], inits)
    assert check(model, np.float32).shapes == [(4, 2)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("data_first", [True, False])
def test_silu_pattern(dtype, data_first):
    (w,) = weights(dtype, (4, 3))
    mul_inputs = ["h", "s"] if data_first else ["s", "h"]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
             helper.make_node("Sigmoid", ["h"], ["s"]),
             helper.make_node("Mul", mul_inputs, ["y"])]
    assert check(make_model(nodes, {"W": w}, dtype), dtype).activations == ("silu",)


def softplus_pattern(dtype, beta, threshold):
    """What PyTorch's default exporter writes for Softplus(beta, threshold)."""
    (w,) = weights(dtype, (4, 3))
    inits = {"W": w, "T": np.array(threshold, dtype), "B": np.array(beta, dtype)}
    scaled = "h" if beta == 1.0 else "hb"
    result = "sp" if beta == 1.0 else "spb"
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        *([helper.make_node("Mul", ["h", "B"], ["hb"])] if beta != 1.0 else []),
        helper.make_node("Softplus", [scaled], ["sp"]),
        *([helper.make_node("Div", ["sp", "B"], ["spb"])] if beta != 1.0 else []),
        helper.make_node("Greater", [scaled, "T"], ["g"]),
        helper.make_node("Where", ["g", "h", result], ["y"]),
    ]
    return make_model(nodes, inits, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (1.0, 1.5), (2.0, 1.0), (0.5, 3.0)])
def test_thresholded_softplus_pattern(dtype, beta, threshold):
    net = check(softplus_pattern(dtype, beta, threshold), dtype)
    assert net.activations == ("softplus",)
    assert net.activation_params[0] == {"beta": beta, "threshold": threshold}


def test_a_where_that_is_not_softplus_is_a_branch():
    (w,) = weights(np.float32, (4, 3))
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Greater", ["h", "T"], ["g"]),
             helper.make_node("Where", ["g", "h", "r"], ["y"])]
    refusal(make_model(nodes, {"W": w, "T": np.array(1.0, np.float32)}), "branches at value 'h'")


def test_input_forms(tmp_path):
    model = two_layers(np.float32, "Relu", {})
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    data = model.SerializeToString()
    for source in (model, data, bytearray(data), str(path), path):
        net = from_onnx(source)
        assert net.shapes == [(4, 6), (6, 3)] and net.activations == ("relu", "relu")
    assert fastmlp.from_onnx(path).shapes == [(4, 6), (6, 3)]


# -- models written by PyTorch's exporters ----------------------------------------------------

def torch_mlp(torch, dtype):
    nn = torch.nn
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(6)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 1.5)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), bn, nn.Tanh(),
        nn.Linear(6, 6), nn.SiLU(), nn.Linear(6, 6), nn.GELU(), nn.Linear(6, 6),
        nn.GELU("tanh"), nn.Linear(6, 6), nn.Softplus(), nn.Linear(6, 6),
        # Parameters exact in float32, as ONNX stores float attributes in 32 bits.
        nn.Softplus(beta=2.0, threshold=1.0), nn.Linear(6, 6), nn.LeakyReLU(0.25),
        nn.Linear(6, 6), nn.ELU(0.5), nn.Linear(6, 6, bias=False), nn.Dropout(), nn.Sigmoid(),
        nn.Linear(6, 3), nn.Softmax(dim=-1),
    ).to(dtype).eval()


def export(torch, model, x, dynamo, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            batch = torch.export.Dim("batch")
            program = torch.onnx.export(model, (x,), dynamo=True, verbose=False,
                                        dynamic_shapes=({0: batch},), **kwargs)
            return program.model_proto
        buffer = io.BytesIO()
        torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}}, **kwargs)
        return onnx.load_from_string(buffer.getvalue())


EXPORTED_ACTIVATIONS = ("relu", "tanh", "silu", "gelu", "gelu_tanh", "softplus", "softplus",
                        "leaky_relu", "elu", "sigmoid", "softmax")


def test_pytorch_torchscript_export_float32():
    torch = pytest.importorskip("torch")
    proto = export(torch, torch_mlp(torch, torch.float32), torch.randn(5, 4), dynamo=False)
    net = check(proto, np.float32, scale=4.0)  # against onnxruntime
    # This exporter writes the BatchNormalization (an Affine step, then a Tanh Activation)
    # and softplus with beta as Mul, Softplus, Div (it drops the threshold): Affine steps
    # around a plain softplus.
    assert net.activations == ("relu", "identity", "silu", "gelu", "gelu_tanh", "softplus",
                               "identity", "leaky_relu", "elu", "sigmoid", "softmax")


def test_pytorch_dynamo_export_float64_matches_torch():
    # The default exporter (torch.export based) keeps Softplus' threshold; in float64 the
    # network must agree with PyTorch itself to rounding.
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    model = torch_mlp(torch, torch.float64)
    proto = export(torch, model, torch.randn(5, 4, dtype=torch.float64), dynamo=True)
    x = torch.randn(64, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 4
    with torch.no_grad():
        expected = model(x).numpy()
    net = from_onnx(proto)
    assert net.dtype == np.float64 and net.activations == EXPORTED_ACTIVATIONS
    assert net.activation_params[6] == {"beta": 2.0, "threshold": 1.0}
    np.testing.assert_allclose(net(x.numpy()), expected, rtol=1e-12, atol=1e-13)


def test_pytorch_export_with_decomposed_gelu_is_refused_with_advice():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GELU())
    proto = export(torch, model, torch.randn(2, 4), dynamo=False, opset_version=17)
    refusal(proto, "branches at value", "opset_version >= 20")


# -- refusals -------------------------------------------------------------------------------

def refusal(model, *fragments):
    with pytest.raises(ValueError) as info:
        from_onnx(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def chain(*nodes, inits=None, **kwargs):
    (w,) = weights(np.float32, (4, 4), seed=9)
    return make_model(list(nodes), {"W": w, **(inits or {})}, **kwargs)


def mm(x="x", y="h", name="mm"):
    return helper.make_node("MatMul", [x, "W"], [y], name=name)


def test_refuses_unknown_operators():
    refusal(chain(mm(), helper.make_node("Sin", ["h"], ["y"], name="sin")),
            "node 'sin' (Sin): unsupported operator", "supported: Gemm")
    refusal(chain(mm(), helper.make_node("Selu", ["h"], ["y"], name="s", domain="custom.ops"),
                  check=False), "node 's' (Selu)", "domain 'custom.ops'")
    refusal(chain(mm(), helper.make_node("Normalizer", ["h"], ["y"], name="n",
                                         domain="ai.onnx.ml"), check=False),
            "node 'n' (Normalizer)", "unsupported operator of domain 'ai.onnx.ml'")


def test_refuses_weights_computed_at_run_time():
    nodes = [helper.make_node("Relu", ["W"], ["W1"], name="w_relu"),
             helper.make_node("MatMul", ["x", "W1"], ["y"], name="mm")]
    refusal(chain(*nodes), "node 'mm' (MatMul)", "'W1'", "not a constant")
    refusal(chain(helper.make_node("Mul", ["x", "x"], ["y"], name="sq")), "node 'sq' (Mul)",
            "every other input a constant")
    refusal(chain(helper.make_node("Sub", ["W", "x"], ["h"], name="sub"), mm("h", "y")),
            "node 'sub' (Sub)", "first input")


def test_refuses_graphs_that_are_not_chains():
    branches = [mm(), helper.make_node("Relu", ["h"], ["a"], name="r"),
                helper.make_node("Tanh", ["h"], ["b"], name="t"),
                helper.make_node("Add", ["a", "b"], ["y"], name="join")]
    refusal(chain(*branches), "branches at value 'h'", "node 'r' (Relu)", "node 't' (Tanh)")
    two_outputs = [mm(), helper.make_node("Relu", ["h"], ["y"]),
                   helper.make_node("Tanh", ["h"], ["y2"])]
    refusal(chain(*two_outputs, outputs=("y", "y2")), "1 data inputs and 2 outputs")
    stray = [mm("x", "y"), helper.make_node("Relu", ["W"], ["unused"], name="lost")]
    refusal(chain(*stray), "node 'lost' (Relu): not on the chain")
    inner_read = [mm(), helper.make_node("Sigmoid", ["h"], ["s"], name="sig"),
                  helper.make_node("Mul", ["h", "s"], ["y"], name="silu_mul"),
                  helper.make_node("Identity", ["s"], ["leak"], name="leak")]
    refusal(chain(*inner_read, outputs=("y",)), "node 'leak' (Identity)",
            "inside an activation pattern")


def test_refuses_data_layout_changes():
    refusal(chain(helper.make_node("Gemm", ["x", "W"], ["y"], name="g", transA=1)),
            "node 'g' (Gemm)", "transA=1")
    refusal(chain(helper.make_node("Reshape", ["x", "s"], ["f"], name="rs"), mm("f", "y"),
                  inits={"s": np.array([1, -1])}), "node 'rs' (Reshape)", "[1, -1]")
    refusal(chain(helper.make_node("Reshape", ["x", "s"], ["f"], name="rs", allowzero=1),
                  mm("f", "y"), inits={"s": np.array([0, 4])}), "does not keep")
    refusal(chain(helper.make_node("Flatten", ["x"], ["f"], name="fl", axis=0), mm("f", "y")),
            "node 'fl' (Flatten)", "merges the batch")
    refusal(chain(mm("x", "y"), input_dims=["batch", 2, 2]), "rank 3")
    refusal(chain(helper.make_node("Add", ["x", "big"], ["h"], name="add"), mm("h", "y"),
                  inits={"big": np.ones((3, 4), np.float32)}), "node 'add' (Add)",
            "not a per-feature constant")


def test_refuses_training_mode_nodes():
    refusal(chain(helper.make_node("Dropout", ["x", "r", "yes"], ["d"], name="drop"),
                  mm("d", "y"), inits={"r": np.array(0.5, np.float32), "yes": np.array(True)}),
            "node 'drop' (Dropout)", "training mode")
    stats = {k: np.ones(4, np.float32) for k in ("s", "b", "m", "v")}
    refusal(chain(mm(), helper.make_node("BatchNormalization", ["h", "s", "b", "m", "v"],
                                         ["y", "rm", "rv"], name="bn", training_mode=1),
                  inits=stats), "node 'bn' (BatchNormalization)", "training mode")


def test_activations_before_any_dense_layer_and_in_a_row():
    for nodes in ([helper.make_node("Relu", ["x"], ["r"]), mm("r", "y")],
                  [mm(), helper.make_node("Relu", ["h"], ["r"]),
                   helper.make_node("Tanh", ["r"], ["y"])]):
        net = check(chain(*nodes), np.float32)
        assert "Activation" in [type(layer).__name__ for layer in net.layers]


def test_refuses_shapes_that_do_not_chain():
    refusal(chain(helper.make_node("Identity", ["x"], ["y"])), "has no dense layer")
    (w,) = weights(np.float32, (5, 2))
    refusal(chain(mm(), helper.make_node("MatMul", ["h", "W5"], ["y"], name="mm5"),
                  inits={"W5": w}), "node 'mm5' (MatMul)", "expects 5 input features but "
            "receives 4")


def test_refuses_other_input_types():
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.INT64, [None, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    refusal(helper.make_model(graph), "element type INT64")
    refusal(b"definitely not protobuf", "not a readable ONNX model")
    with pytest.raises(FileNotFoundError):
        from_onnx("/nonexistent/model.onnx")
    with pytest.raises(TypeError, match="path, bytes or onnx.ModelProto"):
        from_onnx(42)


# -- skl2onnx graphs ------------------------------------------------------------------------

def need(*names):
    """Skips until the core has these activations (they land on main from another branch)."""
    missing = sorted(set(names) - set(fastmlp.activation_names()))
    if missing:
        pytest.skip(f"this fastmlp core lacks {', '.join(missing)}")


def skl2onnx_case(kind, data, dtype, zipmap):
    """A scikit-learn model trained on a bundled data set, its skl2onnx graph, and X."""
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn import datasets, preprocessing as pre
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline

    X, y = {"iris": datasets.load_iris, "wine": datasets.load_wine,
            "breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits,
            "diabetes": datasets.load_diabetes}[data](return_X_y=True)
    X = X.astype(dtype)
    scaler = {"mlp": None, "standard": pre.StandardScaler(), "minmax": pre.MinMaxScaler(),
              "maxabs": pre.MaxAbsScaler(), "robust": pre.RobustScaler()}[kind]
    if data == "digits":
        y = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])[y]  # string labels
    mlp = (MLPRegressor if data == "diabetes" else MLPClassifier)(
        hidden_layer_sizes=(12,), max_iter=30, random_state=0)
    model = mlp if scaler is None else make_pipeline(scaler, mlp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
        options = None if data == "diabetes" else {id(mlp): {"zipmap": zipmap}}
        proto = skl2onnx.to_onnx(model, X[:1], options=options)
    return proto, X


SKL2ONNX = [(kind, data) for kind, data in (
    ("mlp", "iris"), ("mlp", "breast_cancer"), ("standard", "wine"), ("minmax", "iris"),
    ("maxabs", "digits"), ("robust", "breast_cancer"), ("standard", "diabetes"),
    ("mlp", "diabetes"))]


@pytest.mark.parametrize("zipmap", [False, True], ids=["arrays", "zipmap"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("kind, data", SKL2ONNX)
def test_skl2onnx_graphs_match_onnxruntime(kind, data, dtype, zipmap):
    if data == "diabetes" and zipmap:
        pytest.skip("a regressor has no ZipMap")
    if dtype == np.float64 and zipmap:
        pytest.skip("onnxruntime's ZipMap takes float only")
    proto, X = skl2onnx_case(kind, data, dtype, zipmap)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {proto.graph.input[0].name: X})
    model = from_onnx(proto)
    tol = tolerance(dtype)
    if data == "diabetes":
        np.testing.assert_allclose(model(X), outputs[0].reshape(len(X), -1), rtol=tol,
                                   atol=tol * np.abs(outputs[0]).max())
        return
    labels, proba = outputs
    if zipmap:  # a list of {label: probability}
        proba = np.array([[row[c] for c in model.classes_] for row in proba])
    assert model.network.dtype == dtype
    np.testing.assert_array_equal(model.predict(X), labels)
    np.testing.assert_allclose(model.predict_proba(X), proba, rtol=tol, atol=tol)
    assert model.target_type_ == ("binary" if data == "breast_cancer" else "multiclass")


def test_skl2onnx_multilabel_is_refused_with_the_reason():
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier

    X, y = load_iris(return_X_y=True)
    Y = np.stack([y == 0, y == 1], axis=1).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, Y)
    proto = skl2onnx.to_onnx(clf, X[:1].astype(np.float32),
                             options={id(clf): {"zipmap": False}})
    refusal(proto, "(Binarizer)", "multilabel")


# -- the new operators, steps and load-time folds ---------------------------------------------

NEW_OPS = [
    ("Selu", {}, "selu"), ("Celu", {"alpha": 0.5}, "celu"), ("Mish", {}, "mish"),
    ("HardSwish", {}, "hardswish"), ("HardSigmoid", {}, "hardsigmoid"),
    ("HardSigmoid", {"alpha": 0.25, "beta": 0.4}, "hardsigmoid"), ("Softsign", {}, "softsign"),
    ("LogSoftmax", {}, "log_softmax"),
]


def new_activation(name, z, attrs):
    """float64 references: the ONNX reference evaluator rounds several of these to float32."""
    import torch

    t = torch.from_numpy(z)
    F = torch.nn.functional
    if name == "hardsigmoid":  # float attributes are stored in 32 bits
        alpha, beta = (float(np.float32(attrs.get(k, d))) for k, d in (("alpha", 0.2),
                                                                       ("beta", 0.5)))
        return np.clip(alpha * z + beta, 0, 1)
    return {"selu": F.selu, "celu": lambda v: F.celu(v, attrs.get("alpha", 1.0)),
            "mish": F.mish, "hardswish": F.hardswish, "softsign": F.softsign,
            "log_softmax": lambda v: F.log_softmax(v, dim=1)}[name](t).numpy()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("op, attrs, name", NEW_OPS, ids=lambda v: str(v))
def test_new_activation_ops(dtype, op, attrs, name):
    need(name)
    model = two_layers(dtype, op, attrs, opset=18)
    expected = None
    if dtype == np.float64:
        pytest.importorskip("torch")
        w1, b1, w2, b2 = weights(dtype, (6, 4), (6,), (6, 3), (3,))
        expected = lambda x: new_activation(  # noqa: E731
            name, new_activation(name, x @ w1.T + b1, attrs) @ w2 + b2, attrs)
    net = check(model, dtype, expected, scale=30.0)  # |z| in the tens to hundreds
    assert net.activations == (name, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_clip_prelu_layernorm_and_residual_add(dtype):
    need("hardtanh", "prelu")
    w1, b1, w2, slope, gamma, beta = weights(dtype, (4, 6), (6,), (6, 6), (6,), (6,), (6,),
                                             seed=3)
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["m"]),
        helper.make_node("Add", ["m", "B1"], ["h"]),
        helper.make_node("Clip", ["h", "lo", "hi"], ["c"]),
        helper.make_node("LayerNormalization", ["c", "G", "B"], ["n"], epsilon=1e-3),
        helper.make_node("MatMul", ["n", "W2"], ["f"]),
        helper.make_node("PRelu", ["f", "S"], ["p"]),
        helper.make_node("Add", ["c", "p"], ["r"]),  # c + f(c): a residual block
        helper.make_node("Clip", ["r", "", "hi"], ["y"]),  # no lower bound
    ]
    inits = {"W1": w1, "B1": b1, "W2": w2, "S": slope, "G": gamma, "B": beta,
             "lo": np.array(-1.5, dtype), "hi": np.array(2.0, dtype)}
    net = check(make_model(nodes, inits, dtype, opset=18), dtype)
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Residual", "Activation"]


def test_float16_weights_and_transposed_initializers_are_folded_at_load_time():
    w = np.random.default_rng(4).normal(size=(3, 4)).astype(np.float16)  # stored (out, in)
    nodes = [helper.make_node("Cast", ["W16"], ["W32"], to=TensorProto.FLOAT),
             helper.make_node("Transpose", ["W32"], ["W"], perm=[1, 0]),
             helper.make_node("Cast", ["x"], ["x32"], to=TensorProto.FLOAT),  # a no-op
             helper.make_node("MatMul", ["x32", "W"], ["y"])]
    net = check(make_model(nodes, {"W16": w}), np.float32)
    np.testing.assert_array_equal(net.weights[0], w.astype(np.float32).T)
    refusal(make_model([helper.make_node("Cast", ["x"], ["xd"], to=TensorProto.DOUBLE),
                        helper.make_node("MatMul", ["xd", "W"], ["y"], name="mm")],
                       {"W": np.ones((4, 2))}, check=False),
            "(Cast): casts the data to DOUBLE", "input's type (float32)")


def test_branch_refusal_hints_at_gelu_only_for_gelu():
    refusal(chain(mm(), helper.make_node("Relu", ["h"], ["a"]),
                  helper.make_node("Tanh", ["h"], ["b"]),
                  helper.make_node("Mul", ["a", "b"], ["y"])), "branches at value 'h'")
    with pytest.raises(ValueError) as info:
        from_onnx(chain(mm(), helper.make_node("Relu", ["h"], ["a"]),
                        helper.make_node("Tanh", ["h"], ["b"]),
                        helper.make_node("Mul", ["a", "b"], ["y"])))
    assert "GELU" not in str(info.value)
# -- hostile graphs (issue 13): clear ValueErrors naming the node, in bounded time ---------

def refusal_within(seconds, model, *fragments):
    """refusal(), failing instead of hanging if the importer loops (the walk is pure Python,
    so an alarm interrupts it)."""
    import signal

    def timeout(signum, frame):
        raise TimeoutError(f"from_onnx still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        refusal(model, *fragments)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_cyclic_graphs_fail_fast():
    # Issue 13: Identity(h) -> q, Identity(q) -> h looped forever; with a MatMul in the
    # cycle the importer also grew without bound (891 MiB in 10 s).
    identities = [mm(), helper.make_node("Identity", ["h"], ["q"], name="id1"),
                  helper.make_node("Identity", ["q"], ["h"], name="id2"),
                  helper.make_node("Relu", ["W"], ["y"], name="elsewhere")]
    refusal_within(5, chain(*identities, check=False), "node 'id1' (Identity)", "cycle")
    through_matmul = [helper.make_node("Identity", ["x"], ["h"], name="in"),
                      mm("h", "q", name="loop_mm"),
                      helper.make_node("Identity", ["q"], ["h"], name="back"),
                      helper.make_node("Relu", ["W"], ["y"], name="elsewhere")]
    refusal_within(5, chain(*through_matmul, check=False), "node 'loop_mm' (MatMul)", "cycle")
    self_loop = [mm(), helper.make_node("Relu", ["h"], ["h"], name="self"),
                 helper.make_node("Relu", ["W"], ["y"], name="elsewhere")]
    refusal_within(5, chain(*self_loop, check=False), "node 'self' (Relu)")


def test_node_without_outputs():
    # Issue 13: IndexError.
    refusal(chain(mm(), helper.make_node("Relu", ["h"], [], name="mute"), check=False),
            "node 'mute' (Relu)", "has no output")
    refusal(chain(mm(), helper.make_node("Relu", ["h"], [""], name="blank"), check=False),
            "node 'blank' (Relu)", "has no output")
    # Found by the file fuzzer: a residual Add(h, f(h)) without an output (IndexError).
    refusal(chain(mm(), helper.make_node("Sigmoid", ["h"], ["s"], name="sig"),
                  helper.make_node("Add", ["h", "s"], [], name="res"), check=False),
            "node 'res' (Add)", "has no output")
    refusal(chain(helper.make_node("Constant", [], [], name="c", value_float=1.0),
                  helper.make_node("Identity", [], ["k"], name="i"), mm("x", "y"),
                  check=False), "node 'c' (Constant): not on the chain")


def with_attribute(node, name, value):
    del node.attribute[:]
    node.attribute.append(helper.make_attribute(name, value))
    return node


@pytest.mark.parametrize("op, name, value, expected", [
    ("Gelu", "approximate", 1.5, "attribute 'approximate' is of type FLOAT, expected STRING"),
    ("Gelu", "approximate", 3, "attribute 'approximate' is of type INT, expected STRING"),
    ("LeakyRelu", "alpha", "big", "attribute 'alpha' is of type STRING, expected FLOAT"),
    ("Elu", "alpha", [1.0, 2.0], "attribute 'alpha' is of type list, expected FLOAT"),
    ("Softmax", "axis", 1.0, "attribute 'axis' is of type FLOAT, expected INT"),
    ("Flatten", "axis", "one", "attribute 'axis' is of type STRING, expected INT"),
])
def test_attributes_of_the_wrong_type(op, name, value, expected):
    # Issue 13: AttributeError (Gelu's approximate as a float).
    node = with_attribute(helper.make_node(op, ["h"], ["y"], name="act"), name, value)
    refusal(chain(mm(), node, check=False), f"node 'act' ({op})", expected)


def test_gemm_attributes_of_the_wrong_type():
    # Issue 13: TypeError / UFuncTypeError (Gemm's alpha as a string).
    for name, value, expected in (("alpha", "2", "'alpha' is of type STRING"),
                                  ("beta", [1.0], "'beta' is of type list"),
                                  ("transB", 1.0, "'transB' is of type FLOAT")):
        gemm = with_attribute(helper.make_node("Gemm", ["x", "W", "C"], ["y"], name="g"),
                              name, value)
        refusal(chain(gemm, inits={"C": np.ones(4, np.float32)}, check=False),
                "node 'g' (Gemm)", expected)
    # An INT where a FLOAT is expected is the number it says.
    gemm = with_attribute(helper.make_node("Gemm", ["x", "W"], ["y"], name="g"), "alpha", 2)
    net = from_onnx(chain(gemm, check=False))
    (w,) = weights(np.float32, (4, 4), seed=9)
    np.testing.assert_allclose(net.weights[0], 2 * w)


def test_missing_or_non_integer_inputs():
    # Found by the fuzz harness: TypeError / OverflowError from int() in Reshape.
    refusal(chain(helper.make_node("Reshape", ["x"], ["f"], name="rs"), mm("f", "y"),
                  check=False), "node 'rs' (Reshape)", "the shape must be integers",
            "missing")
    for shape in (np.array([np.inf, 4.0]), np.array([np.nan, 4.0])):
        refusal(chain(helper.make_node("Reshape", ["x", "s"], ["f"], name="rs"), mm("f", "y"),
                      inits={"s": shape}, check=False), "node 'rs' (Reshape)",
                "must be integers, got dtype float64")
    refusal(chain(helper.make_node("Add", ["x"], ["h"], name="add1"), mm("h", "y"),
                  check=False), "node 'add1' (Add)", "the addend missing")
    refusal(chain(helper.make_node("MatMul", ["x"], ["y"], name="mm1"), check=False),
            "node 'mm1' (MatMul)", "weights missing")


def test_patterns_with_nodes_of_the_wrong_arity():
    # Found by the fuzz harness: IndexError in the SiLU and softplus pattern matchers.
    one_input_mul = [mm(), helper.make_node("Relu", ["h"], ["a"], name="r"),
                     helper.make_node("Mul", ["h"], ["y"], name="mul1")]
    refusal(chain(*one_input_mul, check=False), "branches at value 'h'")
    one_input_greater = [mm(), helper.make_node("Greater", ["h"], ["g"], name="gt1"),
                         helper.make_node("Softplus", ["h"], ["s"], name="sp"),
                         helper.make_node("Where", ["g", "h", "s"], ["y"], name="w")]
    refusal(chain(*one_input_greater, check=False), "branches at value 'h'")


def test_unknown_input_element_type():
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", 99, [None, 4])],
                              [helper.make_tensor_value_info("y", 1, None)])
    refusal(helper.make_model(graph), "input 'x' has element type 99 (unknown)")


def test_refusals_of_a_file_name_the_file(tmp_path):
    # The CLI relies on it: every ValueError of a loader names the file.
    path = tmp_path / "m.onnx"
    onnx.save(chain(mm(), helper.make_node("Sin", ["h"], ["y"], name="hs")), path)
    for source in (path, str(path)):
        refusal(source, f"{path}: node 'hs' (Sin): unsupported operator")
    path.write_bytes(b"not protobuf")
    refusal(path, f"{path} is not a readable ONNX model")


def test_empty_model_file(tmp_path):
    # Found by the fuzz tests after the classifier heads landed: IndexError on output[0].
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    refusal(path, f"{path}: the graph has no outputs")
    refusal(b"", "the graph has no outputs")
