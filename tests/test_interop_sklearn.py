"""from_sklearn: fitted MLPs give the estimator's own predictions, pickled and without sklearn."""
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

from fastmlp.interop import from_sklearn  # noqa: E402
from fastmlp.interop.sklearn import MLPClassifierModel, MLPRegressorModel  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

HIDDEN = ["identity", "logistic", "tanh", "relu"]
DTYPES = [np.float32, np.float64]


def tolerance(dtype):
    return 1e-5 if dtype == np.float32 else 1e-12


def data(dtype, n=120, features=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype(dtype), rng


def fit(cls, X, y, activation="relu", **kwargs):
    model = cls(hidden_layer_sizes=(7, 6), activation=activation, max_iter=30, random_state=0,
                **kwargs)
    return model.fit(X, y)


def assert_close(actual, expected, dtype):
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=tolerance(dtype),
                               atol=tolerance(dtype) * np.abs(expected).max())


# Labels of several types: the wrapper must hand back the estimator's own.
LABELS = {
    "int": lambda rng, n, k: rng.integers(0, k, n) * 3 + 1,
    "str": lambda rng, n, k: np.array(["cat", "dog", "emu", "fox"][:k])[rng.integers(0, k, n)],
    "float": lambda rng, n, k: rng.integers(0, k, n) * 2.0 - 1.0,
    "bool": lambda rng, n, k: rng.integers(0, 2, n).astype(bool),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", HIDDEN)
@pytest.mark.parametrize("n_classes", [2, 4])
def test_classifier_matches_estimator(dtype, activation, n_classes):
    X, rng = data(dtype)
    y = LABELS["int"](rng, len(X), n_classes)
    clf = fit(MLPClassifier, X, y, activation)
    model = from_sklearn(clf)
    assert isinstance(model, MLPClassifierModel)
    assert model.network.dtype == clf.coefs_[0].dtype == dtype
    assert model.network.activations[-1] == ("sigmoid" if n_classes == 2 else "softmax")
    assert model.network.n_outputs == (1 if n_classes == 2 else n_classes)
    assert_close(model.predict_proba(X), clf.predict_proba(X), dtype)
    assert_close(model.predict_log_proba(X), clf.predict_log_proba(X), dtype)
    np.testing.assert_array_equal(model.classes_, clf.classes_)
    predicted = model.predict(X)
    assert predicted.dtype == clf.predict(X).dtype
    np.testing.assert_array_equal(predicted, clf.predict(X))


@pytest.mark.parametrize("kind, n_classes", [
    (kind, n) for kind in LABELS for n in (2, 3) if not (kind == "bool" and n == 3)])
def test_classifier_labels_keep_type_and_dtype(kind, n_classes):
    X, rng = data(np.float64, seed=4)
    clf = fit(MLPClassifier, X, LABELS[kind](rng, len(X), n_classes))
    model = from_sklearn(clf)
    expected = clf.predict(X)
    assert model.predict(X).dtype == expected.dtype == model.classes_.dtype
    np.testing.assert_array_equal(model.predict(X), expected)


def test_binary_network_has_one_logistic_column_and_proba_two():
    X, rng = data(np.float64)
    clf = fit(MLPClassifier, X, rng.integers(0, 2, len(X)))
    model = from_sklearn(clf)
    p = model.network(X)
    assert p.shape == (len(X), 1)
    proba = model.predict_proba(X)
    np.testing.assert_array_equal(proba, np.stack([1 - p[:, 0], p[:, 0]], axis=1))
    np.testing.assert_array_equal(model.predict(X), (p[:, 0] > 0.5).astype(int))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_multilabel_classifier(dtype, activation):
    X, rng = data(dtype, seed=2)
    Y = rng.integers(0, 2, (len(X), 3))
    clf = fit(MLPClassifier, X, Y, activation)
    model = from_sklearn(clf)
    assert model.target_type_ == "multilabel-indicator"
    assert_close(model.predict_proba(X), clf.predict_proba(X), dtype)
    expected = clf.predict(X)
    assert model.predict(X).dtype == expected.dtype and model.predict(X).shape == Y.shape
    np.testing.assert_array_equal(model.predict(X), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", HIDDEN)
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_regressor_matches_estimator(dtype, activation, n_outputs):
    X, rng = data(dtype, seed=1)
    y = rng.normal(size=(len(X), n_outputs)).astype(dtype)
    reg = fit(MLPRegressor, X, y[:, 0] if n_outputs == 1 else y, activation)
    model = from_sklearn(reg)
    assert isinstance(model, MLPRegressorModel)
    assert model.network.dtype == dtype and model.network.activations[-1] == "identity"
    expected = reg.predict(X)
    assert_close(model.predict(X), expected, dtype)
    # The Network itself always returns (n_samples, n_outputs); predict ravels one output.
    assert model.network(X).shape == (len(X), n_outputs)
    assert model.predict(X).shape == ((len(X),) if n_outputs == 1 else (len(X), n_outputs))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.DataConversionWarning")
def test_regressor_fitted_on_a_column_still_ravels_like_sklearn():
    X, rng = data(np.float64)
    reg = fit(MLPRegressor, X, rng.normal(size=(len(X), 1)))
    assert from_sklearn(reg).predict(X).shape == reg.predict(X).shape == (len(X),)


def test_models_pickle():
    X, rng = data(np.float32)
    clf = from_sklearn(fit(MLPClassifier, X, LABELS["str"](rng, len(X), 3)))
    reg = from_sklearn(fit(MLPRegressor, X, rng.normal(size=(len(X), 2))))
    for model in (clf, reg):
        again = pickle.loads(pickle.dumps(model))
        np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).classes_, clf.classes_)


def test_prediction_does_not_import_sklearn(tmp_path):
    X, rng = data(np.float64)
    model = from_sklearn(fit(MLPClassifier, X, LABELS["str"](rng, len(X), 3)))
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    np.save(tmp_path / "X.npy", X)
    script = (
        "import sys, pickle, numpy as np\n"
        "sys.modules['sklearn'] = None  # any import of scikit-learn now fails\n"
        f"model = pickle.loads(open({str(tmp_path / 'model.pkl')!r}, 'rb').read())\n"
        f"print(' '.join(model.predict(np.load({str(tmp_path / 'X.npy')!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == model.predict(X).tolist()


def test_input_must_be_two_dimensional_like_sklearn():
    X, rng = data(np.float64)
    model = from_sklearn(fit(MLPRegressor, X, rng.normal(size=len(X))))
    with pytest.raises(ValueError, match="2-D"):
        model.predict(X[0])


def test_refusals():
    X, rng = data(np.float64)
    with pytest.raises(TypeError, match="MLPClassifier or MLPRegressor, got LogisticRegression"):
        from_sklearn(LogisticRegression().fit(X, rng.integers(0, 2, len(X))))
    with pytest.raises(ValueError, match="not fitted"):
        from_sklearn(MLPClassifier())
    poisson = fit(MLPRegressor, X, rng.poisson(2.0, len(X)), loss="poisson")
    assert poisson.out_activation_ == "exp"
    with pytest.raises(ValueError, match="output activation 'exp' has no fastmlp equivalent"):
        from_sklearn(poisson)


def test_top_level_name():
    import fastmlp

    X, rng = data(np.float64)
    model = fastmlp.from_sklearn(fit(MLPRegressor, X, rng.normal(size=len(X))))
    assert isinstance(model, MLPRegressorModel)


# -- input checks as scikit-learn's --------------------------------------------------------

@pytest.mark.parametrize("bad, message", [(np.nan, "contains NaN"), (np.inf, "infinity"),
                                          (-np.inf, "infinity")])
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_finite_input_raises_like_sklearn(bad, message, dtype):
    X, rng = data(dtype)
    clf = fit(MLPClassifier, X, rng.integers(0, 3, len(X)))
    model = from_sklearn(clf)
    X[7, 2] = bad
    for predict in ("predict", "predict_proba", "predict_log_proba"):
        with pytest.raises(ValueError, match=message):
            getattr(clf, predict)(X)
        with pytest.raises(ValueError, match=message):
            getattr(model, predict)(X)
    with pytest.raises(ValueError, match=message):
        from_sklearn(fit(MLPRegressor, X[8:], rng.normal(size=len(X) - 8))).predict(X)


def sparse_formats():
    sparse = pytest.importorskip("scipy.sparse")
    return [sparse.csr_matrix, sparse.csc_matrix, sparse.coo_matrix, sparse.dok_matrix,
            sparse.lil_matrix, sparse.csr_array]


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_input_like_sklearn(dtype):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16).astype(dtype)  # digits are mostly zeros: a natural sparse input
    clf = MLPClassifier(hidden_layer_sizes=(20,), max_iter=30, random_state=0).fit(X, y[:300])
    model = from_sklearn(clf)
    for make in sparse_formats():
        Xs = make(X)
        np.testing.assert_array_equal(model.predict(Xs), clf.predict(Xs))
        assert_close(model.predict_proba(Xs), clf.predict_proba(Xs), dtype)
        # The same bits as the dense input: rows do not depend on the blocks they came in.
        np.testing.assert_array_equal(model.predict_proba(Xs), model.predict_proba(X))


def test_sparse_input_is_made_dense_in_bounded_blocks(monkeypatch):
    import fastmlp.interop.sklearn as wrapper

    sparse = pytest.importorskip("scipy.sparse")
    X, rng = data(np.float64, n=103)
    X[X < 0.5] = 0
    model = from_sklearn(fit(MLPRegressor, X, rng.normal(size=(len(X), 2))))
    expected = model.predict(X)
    network, seen = model.network, []

    class Recording:  # the Network, recording the rows of every call
        n_inputs, n_outputs, dtype = network.n_inputs, network.n_outputs, network.dtype

        def __call__(self, x, out=None):
            seen.append(x.shape)
            return network(x, out=out)

    monkeypatch.setattr(wrapper, "_BLOCK_VALUES", 5 * X.shape[1])
    model.network = Recording()
    np.testing.assert_array_equal(model.predict(sparse.csc_matrix(X)), expected)
    assert [rows for rows, _ in seen] == [5] * 20 + [3]
    with pytest.raises(ValueError, match="X has 4 features, but this model is expecting 5"):
        model.predict(sparse.csr_matrix(X[:, :4]))
    bad = sparse.csr_matrix(X)
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="contains NaN"):
        model.predict(bad)


# -- pipelines of scalers -------------------------------------------------------------------

def scalers():
    from sklearn import preprocessing as pre

    return {"standard": pre.StandardScaler(), "minmax": pre.MinMaxScaler((-1, 2)),
            "maxabs": pre.MaxAbsScaler(), "robust": pre.RobustScaler(),
            "minmax clipped": pre.MinMaxScaler(clip=True),
            "standard, no mean": pre.StandardScaler(with_mean=False),
            "robust, no scaling": pre.RobustScaler(with_scaling=False)}


def dataset(name, dtype):
    from sklearn import datasets

    X, y = {"iris": datasets.load_iris, "wine": datasets.load_wine,
            "breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits,
            "diabetes": datasets.load_diabetes}[name](return_X_y=True)
    return X.astype(dtype), y


PIPELINES = [(scaler, data) for scaler, data in zip(
    ["standard", "minmax", "maxabs", "robust", "minmax clipped", "standard, no mean",
     "robust, no scaling"],
    ["iris", "wine", "breast_cancer", "digits", "iris", "wine", "breast_cancer"])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scaler, data", PIPELINES)
def test_pipeline_classifier_matches(dtype, scaler, data):
    from sklearn.pipeline import make_pipeline

    if scaler == "minmax clipped" and "hardtanh" not in fastmlp_activations():
        pytest.skip("this fastmlp core lacks hardtanh")
    X, y = dataset(data, dtype)
    pipe = make_pipeline(scalers()[scaler], MLPClassifier(hidden_layer_sizes=(16,), max_iter=40,
                                                          random_state=0)).fit(X, y)
    model = from_sklearn(pipe)
    assert type(model.network.layers[0]).__name__ == "Affine"
    Xt = X * 1.5 if scaler == "minmax clipped" else X  # outside the fitted range: clipped
    np.testing.assert_array_equal(model.predict(Xt), pipe.predict(Xt))
    assert_close(model.predict_proba(Xt), pipe.predict_proba(Xt), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pipeline_regressor_matches_on_diabetes(dtype):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = dataset("diabetes", dtype)
    pipe = Pipeline([("scale", StandardScaler()), ("skip", "passthrough"),
                     ("mlp", MLPRegressor(hidden_layer_sizes=(16, 8), max_iter=40,
                                          random_state=0))]).fit(X, y.astype(dtype))
    model = from_sklearn(pipe)
    assert isinstance(model, MLPRegressorModel)
    assert_close(model.predict(X), pipe.predict(X), dtype)


def fastmlp_activations():
    import fastmlp

    return fastmlp.activation_names()


def test_pipeline_refusals_name_the_step():
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler

    X, y = dataset("iris", np.float64)
    pipe = make_pipeline(StandardScaler(), PCA(2), MLPClassifier(max_iter=5)).fit(X, y)
    with pytest.raises(ValueError, match=r"pipeline step 'pca' \(PCA\): not supported; a "
                                         r"Pipeline may have StandardScaler"):
        from_sklearn(pipe)
    pipe = make_pipeline(Normalizer(), MLPClassifier(max_iter=5)).fit(X, y)
    with pytest.raises(ValueError, match=r"step 'normalizer' \(Normalizer\)"):
        from_sklearn(pipe)
    with pytest.raises(TypeError, match="a Pipeline ending in MLPClassifier or MLPRegressor, "
                                        "got LogisticRegression"):
        from_sklearn(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y))
    with pytest.raises(ValueError, match=r"step 'standardscaler' \(StandardScaler\): not fitted"):
        from_sklearn(make_pipeline(StandardScaler(), fit(MLPClassifier, X, y)))
