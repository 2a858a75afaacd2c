"""The seed article's worked example: 3 inputs, 4 hidden neurons, 2 outputs.

W1 is 3 rows (inputs) by 4 columns (hidden neurons); its largest entry is
W22 = 9, connecting IN2 to N2. The hidden biases are the column
[[0.13], [0.14], [0.15], [0.16]]. Each neuron computes z_j = sum_i w_ij x_i + b_j
and then its activation, exactly as the article spells it out.
"""
import math

import numpy as np
import pytest

import fastmlp

W1 = [[1, 2, 3, 4],
      [5, 9, 7, 8],
      [2, 6, 1, 3]]
B1 = [[0.13], [0.14], [0.15], [0.16]]
W2 = [[0.5, -1.0],
      [-0.25, 0.75],
      [1.5, 0.5],
      [-2.0, 1.0]]
B2 = [[0.1], [-0.2]]
X = [0.1, -0.2, 0.3]


def by_hand(activation):
    """The article's recipe with loops: multiply, add up, add the bias, activate."""
    f = {"linear": lambda z: z,
         "relu": lambda z: max(0.0, z),
         "tanh": math.tanh,
         "sigmoid": lambda z: 1 / (1 + math.exp(-z))}[activation]
    hidden = []
    for j in range(4):
        z = sum(W1[i][j] * X[i] for i in range(3)) + B1[j][0]
        hidden.append(f(z))
    output = []
    for j in range(2):
        z = sum(W2[i][j] * hidden[i] for i in range(4)) + B2[j][0]
        output.append(z)
    return hidden, output


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_worked_example(activation, dtype):
    net = fastmlp.Network([W1, W2], [B1, B2], [activation, "linear"], dtype=dtype)
    assert net.shapes == [(3, 4), (4, 2)]
    hidden, output = by_hand(activation)
    (z1, a1), (z2, a2) = net.trace(X)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(a1, hidden, rtol=tol, atol=tol)
    np.testing.assert_allclose(net(X), output, rtol=tol, atol=tol)
    np.testing.assert_allclose(z2, a2)


def test_first_hidden_neuron_written_out():
    # N1: 1*0.1 + 5*(-0.2) + 2*0.3 + 0.13 = -0.17
    net = fastmlp.Network([W1], [B1], "linear")
    assert net(X)[0] == pytest.approx(1 * 0.1 + 5 * -0.2 + 2 * 0.3 + 0.13, rel=1e-15)
