"""Train the digit classifier that ships inside fastmlp for `fastmlp demo`.

Run from the repository root (needs scikit-learn; not run at install time):

    python scripts/train_demo_model.py

It writes, under fastmlp/data/:
  digits_mlp.npz      the network in fastmlp's own .npz format (64 -> 64 -> 32 -> 10,
                      relu, relu, softmax; float32). It takes raw pixels (0..16): the
                      1/16 input scaling used in training is folded into the first layer.
  digits_holdout.npz  `images` (300, 64) uint8 pixels and `labels` (300,) uint8 of
                      digits the model never saw during training.

Everything is seeded, so a rerun reproduces the same split and, on the same
library versions, the same weights.
"""

import argparse
import pathlib
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import fastmlp

SEED = 0
N_HOLDOUT = 300
HIDDEN = (64, 32)
PIXEL_MAX = 16.0  # sklearn's 8x8 digits use 17 grey levels, 0..16
DATA_DIR = pathlib.Path(__file__).resolve().parent.parent / "fastmlp" / "data"


def train(x_train, y_train):
    clf = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", solver="adam",
                        alpha=1e-3, max_iter=300, random_state=SEED)
    with warnings.catch_warnings():
        # A fixed epoch budget is the point (reproducible, 2 s); full convergence is not.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train / PIXEL_MAX, y_train)
    return clf


def to_network(clf):
    """The fitted MLP as a fastmlp Network that accepts raw 0..16 pixels."""
    weights = [w.astype(np.float32) for w in clf.coefs_]
    weights[0] = weights[0] / np.float32(PIXEL_MAX)  # (x/16) @ W == x @ (W/16)
    biases = [b.astype(np.float32) for b in clf.intercepts_]
    activations = ["relu"] * len(HIDDEN) + ["softmax"]
    return fastmlp.Network(weights, biases, activations, dtype=np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=pathlib.Path, default=DATA_DIR)
    args = parser.parse_args(argv)

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=N_HOLDOUT, random_state=SEED, stratify=y)
    clf = train(x_train, y_train)
    net = to_network(clf)

    # The shipped model must agree with the one sklearn trained.
    reference = clf.predict_proba(x_test / PIXEL_MAX)
    np.testing.assert_allclose(net.forward(x_test.astype(np.float32)), reference, atol=1e-4)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    model_path = args.out_dir / "digits_mlp.npz"
    holdout_path = args.out_dir / "digits_holdout.npz"
    net.save(model_path)
    np.savez_compressed(holdout_path, images=x_test.astype(np.uint8),
                        labels=y_test.astype(np.uint8))

    reloaded = fastmlp.load(model_path)
    accuracy = np.mean(reloaded.forward(x_test.astype(np.float32)).argmax(axis=1) == y_test)
    print(f"held-out accuracy {accuracy:.2%}; sklearn {clf.score(x_test / PIXEL_MAX, y_test):.2%}")
    for path in (model_path, holdout_path):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
