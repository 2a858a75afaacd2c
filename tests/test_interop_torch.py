"""from_torch: every supported module, function and method, batch norm as an Affine step,
nesting, custom modules read by torch.fx, residual blocks, extremes, and every refusal."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import fastmlp  # noqa: E402
from fastmlp.interop import from_torch  # noqa: E402

DTYPES = [torch.float32, torch.float64]
NEW = {"selu", "celu", "mish", "hardswish", "hardsigmoid", "relu6", "hardtanh", "prelu",
       "softsign", "log_softmax"}


def need(*names):
    """Skips until the core has these activations (they land on main from another branch)."""
    missing = sorted(set(names) - set(fastmlp.activation_names()))
    if missing:
        pytest.skip(f"this fastmlp core lacks {', '.join(missing)}")


def check(model, dtype=torch.float64, n_inputs=None, scale=3.0):
    """Converts ``model`` and compares it with PyTorch on random inputs; returns the Network."""
    model = model.to(dtype).eval()
    net = from_torch(model)
    assert net.dtype == np.dtype(str(dtype).replace("torch.", ""))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, n_inputs or net.n_inputs, generator=gen, dtype=dtype) * scale
    with torch.no_grad():
        expected = model(x).numpy()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(net(x.numpy()), expected, rtol=tol,
                               atol=tol * np.abs(expected).max())
    return net


def randomize(bn):
    """Running statistics and affine parameters away from their identity defaults."""
    gen = torch.Generator().manual_seed(bn.num_features)
    with torch.no_grad():
        bn.running_mean.copy_(torch.rand(bn.num_features, generator=gen) * 2 - 1)
        bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
        if bn.affine:
            bn.weight.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
            bn.bias.copy_(torch.rand(bn.num_features, generator=gen) - 0.5)
    return bn.eval()


ACTIVATIONS = [
    (nn.ReLU(), "relu", {}),
    (nn.Tanh(), "tanh", {}),
    (nn.Sigmoid(), "sigmoid", {}),
    (nn.Softmax(dim=-1), "softmax", {}),
    (nn.Softmax(dim=1), "softmax", {}),
    (nn.LeakyReLU(), "leaky_relu", {"negative_slope": 0.01}),
    (nn.LeakyReLU(0.3), "leaky_relu", {"negative_slope": 0.3}),
    (nn.LeakyReLU(-0.5), "leaky_relu", {"negative_slope": -0.5}),
    (nn.ELU(), "elu", {"alpha": 1.0}),
    (nn.ELU(alpha=0.4), "elu", {"alpha": 0.4}),
    (nn.GELU(), "gelu", {}),
    (nn.GELU(approximate="tanh"), "gelu_tanh", {}),
    (nn.SiLU(), "silu", {}),
    (nn.Softplus(), "softplus", {"beta": 1.0, "threshold": 20.0}),
    (nn.Softplus(beta=2.5, threshold=4.0), "softplus", {"beta": 2.5, "threshold": 4.0}),
    (nn.SELU(), "selu", {}),
    (nn.CELU(), "celu", {"alpha": 1.0}),
    (nn.CELU(alpha=0.7), "celu", {"alpha": 0.7}),
    (nn.Mish(), "mish", {}),
    (nn.Hardswish(), "hardswish", {}),
    (nn.Hardsigmoid(), "hardsigmoid", {"alpha": 1 / 6, "beta": 0.5}),
    (nn.ReLU6(), "relu6", {}),
    (nn.Hardtanh(), "hardtanh", {"min_val": -1.0, "max_val": 1.0}),
    (nn.Hardtanh(-2.0, 0.5), "hardtanh", {"min_val": -2.0, "max_val": 0.5}),
    (nn.Softsign(), "softsign", {}),
    (nn.LogSoftmax(dim=-1), "log_softmax", {}),
    (nn.PReLU(), "prelu", {"slope": 0.25}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("module, name, params", ACTIVATIONS, ids=lambda v: repr(v))
def test_every_activation(dtype, module, name, params):
    need(name)
    torch.manual_seed(0)
    # The same module object twice, as Sequential allows (named_children() would list it once).
    net = check(nn.Sequential(nn.Linear(5, 8), module, nn.Linear(8, 4), module), dtype)
    assert net.activations == (name, name)
    assert net.activation_params[0] == (params or fastmlp.ACTIVATION_DEFAULTS[name])


@pytest.mark.filterwarnings("ignore:Implicit dimension choice for softmax")
def test_softmax_with_implicit_dim_is_over_the_features_of_2d_input():
    torch.manual_seed(0)
    assert check(nn.Sequential(nn.Linear(5, 3), nn.Softmax())).activations == ("softmax",)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_linear_layers_in_a_row_keep_an_identity_between(dtype):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 5, bias=False), nn.Identity(),
                          nn.Linear(5, 3), nn.Tanh())
    net = check(model, dtype)
    assert net.activations == ("identity", "identity", "tanh")
    np.testing.assert_array_equal(net.weights[1], model[1].weight.detach().numpy().T)
    assert not net.biases[1].any()


def test_weights_are_copied_exactly_transposed():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    net = from_torch(model)
    for i, layer in enumerate((model[0], model[2])):
        np.testing.assert_array_equal(net.weights[i], layer.weight.detach().numpy().T)
        np.testing.assert_array_equal(net.biases[i], layer.bias.detach().numpy())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nested_sequential_dropout_flatten(dtype):
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Sequential(nn.Linear(6, 7), nn.Sequential(nn.GELU(), nn.Dropout(0.5))),
        nn.Sequential(),
        nn.Sequential(nn.Linear(7, 3), nn.Softmax(dim=-1)),
    )
    net = check(model, dtype)
    assert net.activations == ("gelu", "softmax")


def test_dropout_in_training_mode_is_inference():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.9), nn.ReLU(), nn.Linear(3, 2)).double()
    net = from_torch(model.train())  # still the inference computation
    x = torch.randn(5, 3, dtype=torch.float64)
    np.testing.assert_allclose(net(x.numpy()), model.eval()(x).detach().numpy(), rtol=1e-12)


def test_a_single_linear_module():
    torch.manual_seed(5)
    net = check(nn.Linear(4, 2))
    assert net.activations == ("identity",)


BATCHNORM_MODELS = {
    "after linear": lambda: nn.Sequential(nn.Linear(4, 6), randomize(nn.BatchNorm1d(6)), nn.ReLU(),
                                          nn.Linear(6, 3)),
    "before first linear": lambda: nn.Sequential(randomize(nn.BatchNorm1d(4)), nn.Linear(4, 3),
                                                 nn.Tanh()),
    "after activation": lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(),
                                              randomize(nn.BatchNorm1d(6)), nn.Linear(6, 3)),
    "without bias, not affine": lambda: nn.Sequential(
        nn.Linear(4, 6, bias=False), randomize(nn.BatchNorm1d(6, affine=False)), nn.SiLU(),
        nn.Linear(6, 2, bias=False)),
    "two in a row, dropout between": lambda: nn.Sequential(
        nn.Linear(4, 6), nn.Sigmoid(), randomize(nn.BatchNorm1d(6)), nn.Dropout(),
        randomize(nn.BatchNorm1d(6, eps=1e-3)), nn.Linear(6, 2)),
    "at the end, after activation": lambda: nn.Sequential(nn.Linear(4, 5), nn.Tanh(),
                                                          randomize(nn.BatchNorm1d(5))),
    "between two activations": lambda: nn.Sequential(
        nn.Linear(4, 5), nn.ReLU(), randomize(nn.BatchNorm1d(5)), nn.Tanh(), nn.Linear(5, 2)),
    "first, then activation": lambda: nn.Sequential(randomize(nn.BatchNorm1d(4)), nn.ELU(),
                                                    nn.Linear(4, 2)),
}


def kinds(net):
    """The network's steps by kind, e.g. ['Dense', 'Affine', 'Activation']."""
    return [type(layer).__name__ for layer in net.layers]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", BATCHNORM_MODELS)
def test_batchnorm_is_an_affine_step(dtype, case):
    torch.manual_seed(6)
    net = check(BATCHNORM_MODELS[case](), dtype)
    modules = list(BATCHNORM_MODELS[case]())
    # Never folded into a matrix (that rounds differently): one Affine step per BatchNorm1d.
    assert len(net.weights) == sum(isinstance(m, nn.Linear) for m in modules)
    assert kinds(net).count("Affine") == sum(isinstance(m, nn.BatchNorm1d) for m in modules)


def test_batchnorm_affine_values():
    torch.manual_seed(7)
    bn = randomize(nn.BatchNorm1d(3)).double()
    linear = nn.Linear(2, 3).double()
    net = from_torch(nn.Sequential(linear, bn))
    s = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    t = bn.bias.detach().numpy() - bn.running_mean.numpy() * s
    dense, affine = net.layers
    np.testing.assert_array_equal(dense.weights, linear.weight.detach().numpy().T)
    np.testing.assert_allclose(affine.scale, s, rtol=1e-15)
    np.testing.assert_allclose(affine.shift, t, rtol=1e-15)


def test_infinite_values_through_batchnorm_stay_as_in_torch():
    # The example: an identity-like matrix for the BatchNorm would give NaN here.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), randomize(nn.BatchNorm1d(3)), nn.Tanh())
    x = torch.full((1, 3), 3e38)
    with torch.no_grad():
        expected = model(x).numpy()
    got = from_torch(model)(x.numpy())
    assert not np.isnan(expected).any()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def refusal(model, *fragments):
    with pytest.raises(ValueError) as info:
        from_torch(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


class MyLinear(nn.Linear):
    def forward(self, x):
        return super().forward(x) * 2


class MySequential(nn.Sequential):
    def forward(self, x):
        return super().forward(x) + 1


def test_refuses_unsupported_modules_naming_them():
    refusal(nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Conv1d(1, 1, 1))),
            "module 1.1 (Conv1d(1, 1, kernel_size=(1,), stride=(1,)))", "unsupported module",
            "supported: Linear")
    refusal(nn.Sequential(nn.Linear(4, 4), nn.Tanhshrink()), "module 1 (Tanhshrink())")
    refusal(nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=0)), "module 1 (Softmax(dim=0))",
            "dim=0")
    refusal(nn.Sequential(nn.Linear(4, 4), nn.LogSoftmax(dim=0)), "log_softmax over dim=0")
    refusal(nn.Sequential(nn.Linear(4, 4), nn.Flatten(0)), "flattens the batch")
    refusal(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm((2, 2))), "module 1 (LayerNorm",
            "last 2 dimensions")
    refusal(nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(4)), "normalises 4 features but "
            "receives 5")
    refusal(nn.Sequential(nn.Linear(4, 5), nn.PReLU(4)), "4 slopes for 5 features")


def test_refuses_shapes_that_do_not_chain():
    refusal(nn.Sequential(nn.Linear(4, 5), nn.Linear(6, 2)), "module 1", "expects 6 input "
            "features but receives 5")
    refusal(nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(3).eval()), "module 1",
            "scale per feature (5 values)")
    refusal(nn.Sequential(), "no dense layer")
    refusal(nn.Sequential(nn.Dropout()), "no dense layer")


def test_refuses_batchnorm_in_training_mode_or_without_running_stats():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    refusal(model.train(), "module 1 (BatchNorm1d(4", "training mode", "model.eval()")
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False)).eval()
    refusal(model, "no running statistics")


def test_subclasses_that_override_forward_are_read_by_tracing():
    torch.manual_seed(8)
    check(nn.Sequential(MyLinear(3, 3), nn.ReLU()))  # x @ W.T + b, then * 2
    check(MySequential(nn.Linear(3, 3), nn.Tanh()))  # ... + 1


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16], ids=str)
def test_reduced_precision_parameters_are_read_as_float32(half):
    torch.manual_seed(9)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.ReLU(), nn.Linear(4, 2)).to(half)
    net = from_torch(model)
    assert net.dtype == np.float32
    widened = model.float().eval()  # every float16 / bfloat16 value is exact in float32
    x = torch.randn(16, 3)
    with torch.no_grad():
        expected = widened(x).numpy()
    np.testing.assert_allclose(net(x.numpy()), expected, rtol=1e-5, atol=1e-6)
    refusal(nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3).double()), "mixes float32 and float64")


def test_refuses_uninitialized_lazy_linear_and_non_modules():
    refusal(nn.Sequential(nn.LazyLinear(3)), "module 0", "not initialized")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_torch([nn.Linear(2, 2)])


def test_top_level_name():
    assert fastmlp.from_torch(nn.Linear(2, 2)).shapes == [(2, 2)]


# -- custom modules, read with torch.fx ----------------------------------------------------

import torch.nn.functional as F  # noqa: E402


class Classifier(nn.Module):
    """The usual way to write an MLP: a subclass with layers as attributes."""

    def __init__(self, n_in=8, hidden=16, n_out=3):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(n_in, hidden), nn.Linear(hidden, hidden), \
            nn.Linear(hidden, n_out)
        self.drop = nn.Dropout(0.2)

    def forward(self, x):
        x = x.flatten(1)
        x = self.drop(F.relu(self.fc1(x)))
        x = torch.tanh(self.fc2(x))
        return F.log_softmax(self.out(x), dim=1)


class Block(nn.Module):
    def __init__(self, width, norm=True):
        super().__init__()
        self.norm = nn.LayerNorm(width) if norm else nn.Identity()
        self.fc1, self.fc2 = nn.Linear(width, 2 * width), nn.Linear(2 * width, width)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


class ResidualMLP(nn.Module):
    def __init__(self, n_in=6, width=8, n_out=2, blocks=2):
        super().__init__()
        self.stem = nn.Linear(n_in, width)
        self.blocks = nn.Sequential(*[Block(width, norm=i % 2 == 0) for i in range(blocks)])
        self.norm, self.head = nn.LayerNorm(width), nn.Linear(width, n_out)

    def forward(self, x):
        return self.head(F.silu(self.norm(self.blocks(self.stem(x)))))


class Functional(nn.Module):
    """Functions, tensor methods, buffers and constants instead of modules."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(5, 4))
        self.bias = nn.Parameter(torch.randn(5))
        self.slope = nn.Parameter(torch.rand(5))
        self.register_buffer("mean", torch.randn(4))
        self.register_buffer("std", torch.rand(4) + 0.5)
        self.fc = nn.Linear(5, 3)
        self.register_buffer("projection", torch.randn(3, 3))

    def forward(self, x):
        x = (x.view(x.size(0), -1) - self.mean) / self.std
        x = F.linear(x, self.weight, self.bias)
        x = F.prelu(x, self.slope).reshape(x.shape[0], 5)
        x = F.hardtanh(x * 2 + 1, -1.5, 2.5)
        x = F.layer_norm(x, (5,), eps=1e-3)
        return torch.clamp(self.fc(x).relu(), max=0.8) @ self.projection.t()


class NestedResidual(nn.Module):
    def __init__(self, width=5):
        super().__init__()
        self.a, self.b, self.c = (nn.Linear(width, width) for _ in range(3))

    def forward(self, x):
        y = x + torch.relu(self.a(x))
        y = y + self.c(torch.tanh(self.b(y) + y))  # a residual inside a residual
        return F.softsign(y)


CUSTOM_MODELS = {"classifier": Classifier, "residual MLP": ResidualMLP,
                 "functional": Functional, "nested residual": NestedResidual}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CUSTOM_MODELS)
def test_custom_modules(dtype, case):
    need("log_softmax", "prelu", "hardtanh", "softsign")
    torch.manual_seed(10)
    net = check(CUSTOM_MODELS[case](), dtype)
    if case != "functional":
        assert ("Residual" in kinds(net)) == ("residual" in case)


def test_residual_blocks_on_real_data_match_torch_and_keep_rows_independent():
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, _ = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    torch.manual_seed(11)
    model = ResidualMLP(n_in=X.shape[1], width=16, n_out=3, blocks=3).eval()
    with torch.no_grad():  # LayerNorm parameters away from their 1 / 0 defaults
        for norm in (model.norm, model.blocks[0].norm):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
        expected = model(torch.from_numpy(X)).numpy()
    net = from_torch(model)
    np.testing.assert_allclose(net(X), expected, rtol=1e-5, atol=1e-5)
    assert (net(X).argmax(1) == expected.argmax(1)).all()
    full = net(X)
    for size in (1, 7, 64):
        for start in range(0, len(X), size):
            np.testing.assert_array_equal(net(X[start:start + size]), full[start:start + size])


def test_torch_compile_wrapper_is_unwrapped():
    torch.manual_seed(12)
    model = ResidualMLP()
    compiled = torch.compile(model)  # compiles lazily, on the first call: never made here
    np.testing.assert_array_equal(from_torch(compiled).weights[0], from_torch(model).weights[0])


def test_torchscript_is_refused_saying_what_to_pass():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    for scripted in (torch.jit.script(model), torch.jit.trace(model, torch.randn(2, 3))):
        refusal(scripted, "TorchScript", "pass the nn.Module", "from_onnx")


# -- extremes ---------------------------------------------------------------------------

NEW_ACTIVATIONS = [nn.SELU(), nn.CELU(0.7), nn.Mish(), nn.Hardswish(), nn.Hardsigmoid(),
                   nn.ReLU6(), nn.Hardtanh(-2.0, 3.0), nn.Softsign(), nn.LogSoftmax(dim=1),
                   nn.PReLU(), nn.GELU(), nn.Softplus()]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("module", NEW_ACTIVATIONS, ids=repr)
def test_activations_at_extremes(dtype, module):
    """|z| in the hundreds and infinite inputs, through an Activation step after an Affine
    (which keeps every value as it is, so infinities reach the activation). Where PyTorch
    gives NaN (gelu(-inf) = -inf * 0) fastmlp may give the limit instead."""
    need(*NEW)
    model = nn.Sequential(nn.Linear(4, 4), randomize(nn.BatchNorm1d(4)), module).to(dtype).eval()
    net = from_torch(model)
    x = torch.tensor([[300.0, -300.0, 700.0, -900.0], [1e30, -1e30, 3e38, -3e38],
                      [float("inf"), float("-inf"), 0.0, 1.0]], dtype=dtype)
    with torch.no_grad():
        expected = model(x).numpy()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    got, defined = net(x.numpy()), ~np.isnan(expected)
    np.testing.assert_allclose(got[defined], expected[defined], rtol=tol, atol=tol)
    assert np.isinf(got[np.isinf(expected)]).all()


# -- refusals of what is not a chain ------------------------------------------------------

class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 2), nn.Linear(3, 2)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], dim=1)


class SumOfBranches(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 3)

    def forward(self, x):
        return self.a(x) + self.b(x)


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else x


class Exp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return torch.exp(self.fc(x))


class DropoutAlwaysOn(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return F.dropout(self.fc(x), 0.5)


def test_refuses_what_is_not_a_chain():
    refusal(TwoHeads(), "operation 'b'", "not the value before it")
    refusal(SumOfBranches(), "operation 'b'", "not the value before it")
    refusal(DataDependent(), "cannot be read with torch.fx", "chain of supported operations")
    refusal(Exp(), "operation 'exp'", "unsupported operation")
    refusal(DropoutAlwaysOn(), "operation 'dropout'", "training=True")
