"""from_torch: every supported module, batch-norm folding, nesting, and every refusal."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import fastmlp  # noqa: E402
from fastmlp.interop import from_torch  # noqa: E402

DTYPES = [torch.float32, torch.float64]


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
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("module, name, params", ACTIVATIONS, ids=lambda v: repr(v))
def test_every_activation(dtype, module, name, params):
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


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", BATCHNORM_MODELS)
def test_batchnorm_is_folded_exactly(dtype, case):
    torch.manual_seed(6)
    net = check(BATCHNORM_MODELS[case](), dtype)
    n_linear = sum(isinstance(m, nn.Linear) for m in BATCHNORM_MODELS[case]())
    # Folded into a Linear; a diagonal layer only where no Linear can absorb it.
    assert len(net) == n_linear + (case in ("at the end, after activation",
                                            "between two activations", "first, then activation"))


def test_batchnorm_folded_into_linear_values():
    torch.manual_seed(7)
    bn = randomize(nn.BatchNorm1d(3)).double()
    linear = nn.Linear(2, 3).double()
    net = from_torch(nn.Sequential(linear, bn))
    s = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    w, b = linear.weight.detach().numpy().T, linear.bias.detach().numpy()
    t = bn.bias.detach().numpy() - bn.running_mean.numpy() * s
    np.testing.assert_allclose(net.weights[0], w * s, rtol=1e-15)
    np.testing.assert_allclose(net.biases[0], b * s + t, rtol=1e-15)


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
    refusal(nn.Sequential(nn.Linear(4, 4), nn.ReLU6()), "module 1 (ReLU6())")
    refusal(nn.Sequential(nn.Linear(4, 4), nn.LogSoftmax(dim=-1)), "LogSoftmax")
    refusal(nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=0)), "module 1 (Softmax(dim=0))",
            "dim=0")
    refusal(nn.Sequential(nn.Linear(4, 4), nn.Flatten(0)), "flattens the batch")


def test_refuses_what_one_dense_layer_cannot_express():
    refusal(nn.Sequential(nn.ReLU(), nn.Linear(4, 4)), "module 0 (ReLU())",
            "before any dense layer")
    refusal(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Tanh()), "module 2 (Tanh())",
            "right after relu")
    refusal(nn.Sequential(nn.Linear(4, 5), nn.Linear(6, 2)), "module 1", "expects 6 input "
            "features but receives 5")
    refusal(nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(3).eval()), "module 1",
            "per-feature constant")
    refusal(nn.Sequential(), "no dense layer")
    refusal(nn.Sequential(nn.Dropout()), "no dense layer")


def test_refuses_batchnorm_in_training_mode_or_without_running_stats():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    refusal(model.train(), "module 1 (BatchNorm1d(4", "training mode", "model.eval()")
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False)).eval()
    refusal(model, "no running statistics")


def test_refuses_subclasses_that_override_forward():
    refusal(nn.Sequential(MyLinear(3, 3)), "module 0 (MyLinear(", "subclass of Linear",
            "overrides forward()")
    refusal(MySequential(nn.Linear(3, 3)), "module <root>", "subclass of Sequential")


def test_refuses_other_dtypes():
    refusal(nn.Sequential(nn.Linear(3, 3)).half(), "float16 parameters")
    refusal(nn.Sequential(nn.Linear(3, 3)).to(torch.bfloat16), "bfloat16 parameters")
    refusal(nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3).double()), "mixes float32 and float64")


def test_refuses_uninitialized_lazy_linear_and_non_modules():
    refusal(nn.Sequential(nn.LazyLinear(3)), "module 0", "not initialized")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_torch([nn.Linear(2, 2)])


def test_top_level_name():
    assert fastmlp.from_torch(nn.Linear(2, 2)).shapes == [(2, 2)]
