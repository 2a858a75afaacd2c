"""Lazy fastmlp inference over dask arrays and dask DataFrames.

    import fastmlp.dask
    y = fastmlp.dask.predict(net, x)                     # dask.array, rows x n_inputs
    out = fastmlp.dask.predict(net, df, columns=["a", "b", "c"])   # dask DataFrame

Arrays give a lazy dask array (rows x n_outputs, row chunks kept, one column
chunk, dtype net.dtype). DataFrames give a lazy dask DataFrame with the input's
index and divisions and columns "y0".."y{M-1}" (or `output_columns`); it is a
DataFrame even for a single output, so the schema never depends on the model:
take `out["y0"]` for a Series.

The network enters the task graph once, as a single key that every block task
depends on (a dask.delayed literal). A distributed scheduler therefore ships it
to each worker once -- the first task there fetches it and the worker keeps it
while its blocks run -- instead of pickling a copy into every task; the effect of
client.scatter(net, broadcast=True), without needing a client.

Each block runs net.forward with `threads=1` by default: dask already runs one
task per worker thread, and more threads per task would oversubscribe the cores.

dask is imported here only, never by `import fastmlp`.
"""

import math
from typing import Any, Optional, Sequence

import numpy as np

import dask
import dask.array as da

from .network import Network
from .tabular import forward_block

__all__ = ["predict", "network_key"]


def network_key(net: Network) -> Any:
    """The network as one Delayed graph key, named by a hash of its parameters."""
    token = dask.base.tokenize(net.weights, net.biases, net.activations,
                               net.activation_params, net.dtype.str)
    return dask.delayed(net, name=f"fastmlp-network-{token}", pure=True)


def predict(net: Network, data: Any, columns: Optional[Sequence[Any]] = None, *,
            output_columns: Optional[Sequence[str]] = None,
            threads: Optional[int] = 1) -> Any:
    """Lazily apply `net` to the rows of a dask array or dask DataFrame.

    columns: for a DataFrame the feature columns in the network's input order
        (default: all of them); for an array, column indices to select.
    output_columns: DataFrame only, names of the output columns (default y0, y1, ...).
    threads: threads per block for net.forward (default 1, see the module doc).
    """
    if isinstance(data, da.Array):
        if output_columns is not None:
            raise TypeError("output_columns applies to DataFrames, not arrays")
        return _predict_array(net, data, columns, threads)
    import dask.dataframe as dd

    if isinstance(data, dd.Series):
        data = data.to_frame()
    if isinstance(data, dd.DataFrame):
        return _predict_frame(net, data, columns, output_columns, threads)
    raise TypeError(f"expected a dask array or dask DataFrame, got {type(data).__name__}")


def _forward_block(block: Any, net: Network, threads: Optional[int]) -> np.ndarray:
    return forward_block(net, block, threads)  # map_blocks passes the block first


def _predict_array(net, x, columns, threads):
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array (rows x {net.n_inputs}), got {x.ndim}-D")
    if columns is not None:
        x = x[:, list(columns)]
    if math.isnan(x.shape[1]) or x.shape[1] != net.n_inputs:
        raise ValueError(f"the array has {x.shape[1]} columns but the network expects "
                         f"{net.n_inputs} inputs")
    x = x.rechunk({1: -1})  # each block must hold whole rows
    return da.map_blocks(
        _forward_block, x, network_key(net), threads,
        dtype=net.dtype,
        chunks=(x.chunks[0], (net.n_outputs,)),
        meta=np.empty((0, net.n_outputs), dtype=net.dtype),
        token="fastmlp-predict",
    )


def _forward_partition(part, net, names, threads):
    import pandas as pd

    y = forward_block(net, part.to_numpy(dtype=net.dtype), threads)
    return pd.DataFrame(y, index=part.index, columns=names)


def _predict_frame(net, df, columns, output_columns, threads):
    import pandas as pd

    columns = list(df.columns) if columns is None else list(columns)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"no column(s) {missing} in the DataFrame")
    if len(columns) != net.n_inputs:
        raise ValueError(f"{len(columns)} feature columns but the network expects "
                         f"{net.n_inputs} inputs")
    names = (list(output_columns) if output_columns is not None
             else [f"y{j}" for j in range(net.n_outputs)])
    if len(names) != net.n_outputs:
        raise ValueError(f"{len(names)} output column names for {net.n_outputs} outputs")
    meta = pd.DataFrame({name: np.empty(0, dtype=net.dtype) for name in names},
                        index=df._meta.index[:0])
    return df[columns].map_partitions(_forward_partition, network_key(net), names, threads,
                                      meta=meta)
