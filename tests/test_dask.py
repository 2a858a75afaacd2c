"""fastmlp.dask: lazy results with the right metadata, the network in the graph once, and
the same answers on a real two-process cluster as in memory."""

import sys
from functools import partial

import numpy as np
import pytest

import fastmlp

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
distributed = pytest.importorskip("distributed")

import fastmlp.dask as fdask  # noqa: E402
from dask.core import get_dependencies  # noqa: E402

N_IN, N_OUT = 8, 3


@pytest.fixture(scope="module")
def net():
    rng = np.random.default_rng(11)
    widths = [N_IN, 32, N_OUT]
    weights = [rng.normal(size=(n, m)).astype(np.float32) / np.sqrt(n)
               for n, m in zip(widths[:-1], widths[1:])]
    biases = [rng.normal(size=m).astype(np.float32) for m in widths[1:]]
    return fastmlp.Network(weights, biases, ["gelu", "softmax"], dtype=np.float32)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(12).normal(size=(2000, N_IN)).astype(np.float32)


@pytest.fixture(scope="module")
def frame(x):
    pdf = pd.DataFrame(x, columns=[f"f{i}" for i in range(N_IN)])
    pdf.insert(0, "label", np.arange(len(x)) % 5)
    pdf.index = pd.Index(np.arange(len(x)) * 10, name="row")
    return pdf


def network_keys(collection):
    """Graph keys whose value is a Network, and the graph."""
    graph = dict(collection.__dask_graph__())
    # Newer dask wraps literals in a DataNode (.value); older graphs hold them bare.
    keys = [k for k, v in graph.items()
            if isinstance(getattr(v, "value", v), fastmlp.Network)]
    return keys, graph


def test_array_is_lazy_with_correct_metadata(net, x):
    dx = da.from_array(x, chunks=(300, 3))  # column chunks too: predict must rechunk them
    y = fdask.predict(net, dx)
    assert isinstance(y, da.Array)
    assert y.dtype == np.float32 and y.shape == (2000, N_OUT)
    assert y.chunks == (dx.chunks[0], (N_OUT,))
    assert type(y._meta) is np.ndarray and y._meta.dtype == np.float32
    np.testing.assert_allclose(y.compute(scheduler="sync"), net.forward(x), rtol=1e-6)


def test_array_casts_and_selects_columns(net, x):
    wider = np.column_stack([np.ones(len(x)), x]).astype(np.float64)
    y = fdask.predict(net, da.from_array(wider, chunks=500), columns=range(1, N_IN + 1))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.compute(scheduler="sync"), net.forward(x), rtol=1e-5)


def test_array_graph_holds_the_network_once(net, x):
    y = fdask.predict(net, da.from_array(x, chunks=(100, N_IN)))
    keys, graph = network_keys(y)
    assert len(keys) == 1
    (key,) = keys
    blocks = [k for k in graph if isinstance(k, tuple) and k[0] == y.name]
    assert len(blocks) == 20
    assert all(key in get_dependencies(graph, k) for k in blocks)
    # The same network gives the same key, so two predictions share it.
    y2 = fdask.predict(net, da.from_array(x[:500], chunks=(100, N_IN)))
    assert network_keys(y2)[0] == keys


def test_array_errors(net, x):
    with pytest.raises(ValueError, match="7 columns but the network expects 8"):
        fdask.predict(net, da.from_array(x[:, :7]))
    with pytest.raises(ValueError, match="2-D"):
        fdask.predict(net, da.from_array(x[0]))
    with pytest.raises(TypeError, match="dask array or dask DataFrame"):
        fdask.predict(net, x)


def test_dataframe_is_lazy_with_correct_metadata(net, frame):
    df = dd.from_pandas(frame, npartitions=6)
    features = [f"f{i}" for i in range(N_IN)]
    out = fdask.predict(net, df, columns=features)
    assert isinstance(out, dd.DataFrame)
    assert list(out.columns) == ["y0", "y1", "y2"]
    assert (out.dtypes == np.float32).all()
    assert out.divisions == df.divisions and out._meta.index.name == "row"
    result = out.compute(scheduler="sync")
    np.testing.assert_allclose(result.to_numpy(), net.forward(frame[features].to_numpy()),
                               rtol=1e-6)
    pd.testing.assert_index_equal(result.index, frame.index)
    assert len(network_keys(out)[0]) == 1


def test_dataframe_output_names_and_errors(net, frame):
    df = dd.from_pandas(frame, npartitions=2)
    features = [f"f{i}" for i in range(N_IN)]
    out = fdask.predict(net, df, columns=features, output_columns=["a", "b", "c"])
    assert list(out.compute(scheduler="sync").columns) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="9 feature columns but the network expects 8"):
        fdask.predict(net, df)  # "label" too
    with pytest.raises(ValueError, match="no column"):
        fdask.predict(net, df, columns=features[:-1] + ["nope"])
    with pytest.raises(ValueError, match="2 output column names for 3 outputs"):
        fdask.predict(net, df, columns=features, output_columns=["a", "b"])


# --------------------------------------------------------------------------- real cluster


def _count_unpickles(module, name):
    """Installed on each worker: count how often pickle looks up the Network's class.

    Every unpickling of a network resolves that global once, so the count is the number
    of network copies this worker has deserialized.
    """
    def hook(event, args):
        if event == "pickle.find_class" and tuple(args) == (module, name):
            hook.count += 1

    hook.count = 0
    sys.addaudithook(hook)  # cannot be removed; the workers end with the module's cluster
    sys.modules["_fastmlp_unpickle_counter"] = hook


def _read_and_reset_count():
    hook = sys.modules["_fastmlp_unpickle_counter"]
    count, hook.count = hook.count, 0
    return count


@pytest.fixture(scope="module")
def client(net):
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None, worker_dashboard_address=None,
                                  death_timeout=60) as cluster, \
            distributed.Client(cluster, timeout=60) as client:
        reconstructor = type(net).__reduce__(net)[0]
        client.run(_count_unpickles, reconstructor.__module__, reconstructor.__qualname__)
        yield client


def _per_worker_unpickles(client):
    return list(client.run(_read_and_reset_count).values())


def test_cluster_array_matches_memory_and_ships_the_network_once_per_worker(client, net, x):
    _per_worker_unpickles(client)
    y = fdask.predict(net, da.from_array(x, chunks=(100, N_IN)))  # 20 blocks
    result = client.compute(y).result(timeout=60)
    np.testing.assert_allclose(result, net.forward(x), rtol=1e-6)
    counts = _per_worker_unpickles(client)
    assert sum(counts) >= 1 and max(counts) == 1, counts

    # The counter can tell: a network captured in every task is unpickled per task.
    per_task = da.from_array(x, chunks=(100, N_IN)).map_blocks(
        partial(fdask._forward_block, net=net, threads=1), dtype=np.float32,
        chunks=((100,) * 20, (N_OUT,)))
    np.testing.assert_allclose(client.compute(per_task).result(timeout=60), result)
    assert sum(_per_worker_unpickles(client)) >= 20


def test_cluster_dataframe_matches_memory(client, net, frame):
    features = [f"f{i}" for i in range(N_IN)]
    out = fdask.predict(net, dd.from_pandas(frame, npartitions=8), columns=features)
    _per_worker_unpickles(client)
    result = client.compute(out).result(timeout=60)
    expected = fdask.predict(net, dd.from_pandas(frame, npartitions=3),
                             columns=features).compute(scheduler="sync")
    pd.testing.assert_frame_equal(result, expected)
    assert max(_per_worker_unpickles(client)) == 1
