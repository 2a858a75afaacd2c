"""`fastmlp predict` through `python -m fastmlp`: formats, streaming memory, atomic output,
Ctrl-C and the progress bar."""

import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastmlp
from clirun import assert_one_line_error, run, run_in_process
from fastmlp import tabular
from fastmlp.cli._progress import Progress

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # .npy and .csv need nothing but numpy; only .parquet needs pyarrow
    pa = pq = None

needs_pyarrow = pytest.mark.skipif(pa is None, reason="needs pyarrow")
PARQUET = pytest.param(".parquet", marks=needs_pyarrow)
SUFFIXES = [".npy", ".csv", PARQUET]

N_IN = 6


def make_net(widths, seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(n, m)).astype(np.float32) / np.sqrt(n)
               for n, m in zip(widths[:-1], widths[1:])]
    biases = [rng.normal(size=m).astype(np.float32) for m in widths[1:]]
    return fastmlp.Network(weights, biases, ["relu"] * (len(widths) - 2) + ["sigmoid"],
                           dtype=np.float32)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.npz"
    net = make_net([N_IN, 16, 3])
    net.save(path)
    return path, net


@pytest.fixture
def x():
    return np.random.default_rng(1).normal(size=(1000, N_IN)).astype(np.float32)


def write_input(path, x, header=True, names=None):
    names = names or [f"f{i}" for i in range(x.shape[1])]
    suffix = path.suffix
    if suffix == ".npy":
        np.save(path, x)
    elif suffix == ".csv":
        with open(path, "w") as f:
            if header:
                f.write(",".join(names) + "\n")
            np.savetxt(f, x, delimiter=",", fmt="%.9g")
    else:
        table = pa.table({name: x[:, i] for i, name in enumerate(names)})
        pq.write_table(table, path, row_group_size=300)
    return path


def read_output(path, n_out=3):
    suffix = path.suffix
    if suffix == ".npy":
        return np.load(path)
    if suffix == ".csv":
        with open(path) as f:
            assert f.readline().strip() == ",".join(f"y{j}" for j in range(n_out))
            return np.loadtxt(f, delimiter=",", ndmin=2, dtype=np.float32)
    table = pq.read_table(path)
    assert table.column_names == [f"y{j}" for j in range(n_out)]
    return np.column_stack([c.to_numpy() for c in table.columns])


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("src, dst", [
    (".npy", ".npy"), (".csv", ".csv"), (".npy", ".csv"),
    pytest.param(".parquet", ".parquet", marks=needs_pyarrow),
    pytest.param(".csv", ".parquet", marks=needs_pyarrow),
    pytest.param(".parquet", ".npy", marks=needs_pyarrow)])
def test_round_trip(tmp_path, model, x, src, dst):
    path, net = model
    source = write_input(tmp_path / f"in{src}", x)
    out = tmp_path / f"out{dst}"
    result = run("predict", path, source, "-o", out, "--batch-size", 128, "--threads", 2)
    assert result.returncode == 0, result.stderr
    assert f"wrote 1,000 rows x 3 outputs to {out}" in result.stderr  # summary; no progress bar
    assert "\r" not in result.stderr
    y = read_output(out)
    assert y.shape == (1000, 3)
    np.testing.assert_allclose(y, net.forward(x), rtol=1e-6, atol=1e-7)
    assert leftovers(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~umask


def test_quiet_prints_nothing(tmp_path, model, x):
    result = run("predict", model[0], write_input(tmp_path / "in.npy", x), "-o",
                 tmp_path / "out.npy", "--quiet")
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""


def test_csv_header_detection_and_overrides(tmp_path, model, x):
    path, net = model
    plain = write_input(tmp_path / "plain.csv", x, header=False)
    assert run("predict", path, plain, "-o", tmp_path / "a.npy").returncode == 0
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), net.forward(x), rtol=1e-6)

    # --header on a file without one: the first row is taken as names.
    assert run("predict", path, plain, "-o", tmp_path / "b.npy", "--header").returncode == 0
    assert np.load(tmp_path / "b.npy").shape == (999, 3)

    headed = write_input(tmp_path / "headed.csv", x)
    assert_one_line_error(run("predict", path, headed, "-o", tmp_path / "c.npy", "--no-header"),
                          "headed.csv, line 1: 'f0' is not a number")


def test_csv_errors_name_the_line(tmp_path, model, x):
    path = model[0]
    lines = write_input(tmp_path / "in.csv", x).read_text().splitlines()
    lines[700] += ",1.5"
    (tmp_path / "ragged.csv").write_text("\n".join(lines) + "\n")
    assert_one_line_error(run("predict", path, tmp_path / "ragged.csv", "-o",
                              tmp_path / "o.npy", "--batch-size", 128),
                          "ragged.csv, line 701: 7 values, expected 6")
    lines = write_input(tmp_path / "in.csv", x).read_text().splitlines()
    lines[500] = "1,2,abc,4,5,6"
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    assert_one_line_error(run("predict", path, tmp_path / "bad.csv", "-o",
                              tmp_path / "o.npy", "--batch-size", 128),
                          "bad.csv, line 501: 'abc' is not a number")
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.npy").exists()


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_columns_pick_features(tmp_path, model, x, suffix):
    path, net = model
    with_id = np.column_stack([np.arange(len(x)), x]).astype(np.float32)
    names = ["id"] + [f"f{i}" for i in range(N_IN)]
    spec = (",".join(str(i) for i in range(1, N_IN + 1)) if suffix == ".npy"
            else ",".join(names[1:]))
    source = write_input(tmp_path / f"in{suffix}", with_id, names=names)
    out = tmp_path / "out.npy"
    result = run("predict", path, source, "-o", out, "--columns", spec)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(out), net.forward(x), rtol=1e-6)
    assert_one_line_error(run("predict", path, source, "-o", out),
                          "has 7 feature columns", "expects 6 inputs")
    if suffix != ".npy":
        assert_one_line_error(run("predict", path, source, "-o", out, "--columns", "f0,nope"),
                              "no column 'nope'", "id, f0")


@needs_pyarrow
def test_parquet_checks_column_types_and_nulls(tmp_path, model, x):
    path = model[0]
    table = pa.table({f"f{i}": x[:, i] for i in range(N_IN)})
    pq.write_table(table.append_column("name", pa.array(["a"] * len(x))), tmp_path / "s.parquet")
    assert_one_line_error(run("predict", path, tmp_path / "s.parquet", "-o", tmp_path / "o.npy"),
                          "column 'name' holds string, not numbers")
    holes = pa.array([1.0, None] + [0.0] * (len(x) - 2), type=pa.float32())
    pq.write_table(table.set_column(2, "f2", holes), tmp_path / "n.parquet")
    assert_one_line_error(run("predict", path, tmp_path / "n.parquet", "-o", tmp_path / "o.npy"),
                          "column 'f2' has missing values")


def test_npy_layouts_and_dtypes(tmp_path, model, x):
    path, net = model
    for name, data in (("fortran", np.asfortranarray(x)), ("f64", x.astype(np.float64)),
                       ("int", np.round(x * 10).astype(np.int16)), ("empty", x[:0])):
        source = tmp_path / f"{name}.npy"
        np.save(source, data)
        out = tmp_path / f"{name}-out.npy"
        result = run("predict", path, source, "-o", out, "--batch-size", 300)
        assert result.returncode == 0, result.stderr
        np.testing.assert_allclose(np.load(out), net.forward(data.astype(np.float32)),
                                   rtol=1e-6)
    np.save(tmp_path / "vec.npy", x[0])
    assert_one_line_error(run("predict", path, tmp_path / "vec.npy", "-o", tmp_path / "o.npy"),
                          "expected a 2-D array")


def test_failure_keeps_the_previous_output(tmp_path, model, x):
    out = tmp_path / "out.npy"
    out.write_bytes(b"previous result")
    narrow = write_input(tmp_path / "narrow.npy", x[:, :4])
    assert_one_line_error(run("predict", model[0], narrow, "-o", out),
                          "narrow.npy has 4 feature columns but", "expects 6 inputs")
    assert out.read_bytes() == b"previous result"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("args, fragment", [
    (("missing.npy", "-o", "out.npy"), "missing.npy: no such file"),
    (("in.txt", "-o", "out.npy"), "unknown input format '.txt'"),
    (("in.npy", "-o", "out.json"), "unknown output format '.json'"),
    (("in.npy", "-o", "in.npy"), "refusing to overwrite the input file"),
    (("in.npy", "-o", "nodir/out.npy"), "does not exist"),
    (("in.npy", "-o", "out.npy", "--threads", "0"), "--threads"),
])
def test_predict_usage_errors(tmp_path, monkeypatch, model, x, args, fragment):
    write_input(tmp_path / "in.npy", x)
    (tmp_path / "in.txt").write_text("1,2\n")
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run("predict", model[0], *args), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy", "in.txt"]


def test_npy_writer_header_is_rewritten_in_place(tmp_path):
    writer = tabular.NpyWriter(tmp_path / "o.npy", 3, np.float64)
    for rows in (5, 0, 7):
        writer.write(np.full((rows, 3), rows, dtype=np.float64))
    writer.close()
    y = np.load(tmp_path / "o.npy")
    assert y.shape == (12, 3) and y[0, 0] == 5 and y[-1, 0] == 7
    with open(tmp_path / "o.npy", "rb") as f:
        assert f.read(writer.header_size)[-1:] == b"\n"
    assert writer.header_size % 64 == 0


# --------------------------------------------------------------------------- progress bar


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_stays_silent_for_short_runs_then_draws():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(stream, enabled=True, delay=0.5, interval=0.1, clock=clock)
    clock.now += 0.2
    progress.update(1000, 0.1)
    assert stream.getvalue() == ""
    clock.now += 0.8  # 1 s in, 2,000 rows, 20 % done
    progress.update(1000, 0.2)
    line = stream.getvalue()
    assert line.startswith("\r[####....") and "20%" in line
    assert "2,000 rows  2.00k rows/s" in line and "ETA 0:00:04" in line
    progress.close()
    assert stream.getvalue().endswith("\n")


def test_progress_disabled_writes_nothing():
    stream = io.StringIO()
    progress = Progress(stream, enabled=False, delay=0)
    progress.update(10, None)
    progress.close()
    assert stream.getvalue() == ""


def test_progress_without_total_shows_rows_and_rate():
    clock = FakeClock()
    progress = Progress(io.StringIO(), enabled=True, clock=clock)
    progress.update(3_000_000, None)
    clock.now += 2
    assert progress.line(clock.now) == "3,000,000 rows  1.50M rows/s"


# --------------------------------------------------------------------------- large files


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A 64-input model and 400,000 x 64 float32 rows (100 MiB) as .npy, .csv and .parquet."""
    d = tmp_path_factory.mktemp("large")
    net = make_net([64, 128, 10], seed=2)
    net.save(d / "wide.npz")
    rows, block_rows = 400_000, 10_000
    text = io.StringIO()
    np.savetxt(text, np.random.default_rng(5).normal(size=(block_rows, 64)), delimiter=",",
               fmt="%.5g")
    block = np.loadtxt(io.StringIO(text.getvalue()), delimiter=",", dtype=np.float32)
    big = np.lib.format.open_memmap(d / "big.npy", mode="w+", dtype=np.float32,
                                    shape=(rows, 64))
    for start in range(0, rows, block_rows):
        big[start:start + block_rows] = block
    big.flush()
    del big
    with open(d / "big.csv", "w") as f:  # 200,000 rows: parsing text is the slow part
        f.write(text.getvalue() * 20)
    np.save(d / "tiny.npy", block[:100])
    np.savetxt(d / "tiny.csv", block[:100], delimiter=",", fmt="%.5g")
    if pa is not None:
        table = pa.table({f"f{i}": block[:, i] for i in range(64)})
        with pq.ParquetWriter(d / "big.parquet", table.schema) as w:
            for _ in range(rows // block_rows):
                w.write_table(table, row_group_size=block_rows)
        pq.write_table(table.slice(0, 100), d / "tiny.parquet")
    return d, net, block


def peak_rss_mib(*args):
    """Peak RSS of `python -m fastmlp ARGS`, read by a wrapper process after the child exits."""
    code = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:])\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(r.returncode)\n")
    result = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "fastmlp",
                             *map(str, args)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1]) / 1024  # Linux reports KiB


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss units differ")
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_memory_stays_flat_on_large_inputs(wide, suffix):
    d, net, block = wide
    size_mib = os.path.getsize(d / f"big{suffix}") / 2**20
    out = d / "out.npy"
    # CSV blocks hold each line's text while it is parsed: smaller blocks, so that the peak
    # (measured 24.6 MiB of growth with 8192-row blocks, next to the bound) stays flat.
    common = ("--batch-size", 4096 if suffix == ".csv" else 8192, "--quiet")
    baseline = peak_rss_mib("predict", d / "wide.npz", d / f"tiny{suffix}", "-o", out, *common)
    peak = peak_rss_mib("predict", d / "wide.npz", d / f"big{suffix}", "-o", out, *common)
    rows = 200_000 if suffix == ".csv" else 400_000
    whole = rows * 64 * 4 / 2**20  # the parsed input alone, were it loaded whole
    print(f"\n{suffix}: {size_mib:.0f} MiB file, {rows:,} rows: peak RSS {peak:.0f} MiB, "
          f"tiny-file baseline {baseline:.0f} MiB")
    assert peak - baseline < min(40, whole / 2), (peak, baseline)
    y = np.load(out, mmap_mode="r")
    assert y.shape == (rows, 10)
    np.testing.assert_allclose(y[-len(block):], net.forward(block), rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="POSIX")
def test_ctrl_c_exits_130_and_removes_the_temp_file(wide):
    d = wide[0]
    out_dir = d / "interrupt"
    out_dir.mkdir()
    # The child gets Ctrl-C's default action even where this run ignores SIGINT (a job a
    # non-interactive shell started in the background): Python then turns it into
    # KeyboardInterrupt, as in a terminal.
    proc = subprocess.Popen([sys.executable, "-m", "fastmlp", "predict", d / "wide.npz",
                             d / "big.npy", "-o", out_dir / "out.csv", "--batch-size", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not leftovers(out_dir) and time.monotonic() < deadline:  # the temp file is open
        time.sleep(0.02)
    assert leftovers(out_dir), "predict never started writing"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip() == "fastmlp: interrupted"
    assert list(out_dir.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_bar_on_a_terminal(wide):
    d = wide[0]
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "fastmlp", "predict", d / "wide.npz",
                             d / "big.npy", "-o", d / "progress.csv", "--batch-size", "4096"],
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        seen += data
    os.close(master)
    assert proc.wait(timeout=60) == 0, seen
    text = seen.decode()
    assert "\r[" in text and "rows/s" in text and "100%" in text
    assert "wrote 400,000 rows x 10 outputs" in text


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path, model):
    (tmp_path / "in.parquet").write_bytes(b"PAR1")
    result = run("predict", model[0], tmp_path / "in.parquet", "-o", tmp_path / "o.npy",
                 block=["pyarrow"])
    assert_one_line_error(result, "reading .parquet files needs the 'pyarrow' module",
                          'pip install "fastmlp[parquet]"')
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- rough edges


def write_lines(path, *lines, encoding="utf-8"):
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding)
                     if isinstance(lines[0], str) else b"\n".join(lines) + b"\n")
    return path


def test_empty_field_is_an_error_naming_the_line(tmp_path, model):
    source = write_lines(tmp_path / "holes.csv", "1,,3,4,5,6")
    assert_one_line_error(run_in_process("predict", model[0], source, "-o", tmp_path / "o.npy"),
                          "holes.csv, line 1: field 2 is empty")
    assert not (tmp_path / "o.npy").exists()


def test_wrong_delimiter_is_not_a_header_and_gets_a_hint(tmp_path, model):
    source = write_lines(tmp_path / "semi.csv", "1;2;3;4;5;6", "4;5;6;7;8;9")
    assert_one_line_error(run_in_process("predict", model[0], source, "-o", tmp_path / "o.npy"),
                          "semi.csv has 1 feature column but the network expects 6 inputs",
                          "line 1 splits into 6 numbers at ';'", "--delimiter ';'")
    result = run_in_process("predict", model[0], source, "-o", tmp_path / "o.npy",
                            "--delimiter", ";")
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "o.npy").shape == (2, 3), "the first line was lost as a header"


def test_a_stray_line_in_the_wrong_delimiter_names_it_with_a_hint(tmp_path, model):
    source = write_lines(tmp_path / "mixed.csv", "1,2,3,4,5,6", "1;2;3;4;5;6")
    assert_one_line_error(run_in_process("predict", model[0], source, "-o", tmp_path / "o.npy"),
                          "mixed.csv, line 2: 1 value, expected 6", "--delimiter ';'")


@pytest.mark.parametrize("line, is_header", [
    ("f0,f1,f2", True), ('"a","b"', True), ("1,2,3", False), ("1;2;3", False),
    ("a,,b", False), ("id,2,3", False), ("1 2 3", False), ("1,,3", False)])
def test_header_detection_never_takes_numbers(line, is_header):
    fields = line.split(",")
    assert tabular._looks_like_header(fields, line, ",") is is_header, line


def test_underscore_number_error_gives_the_file_line(tmp_path, model, x):
    lines = write_input(tmp_path / "in.csv", x).read_text().splitlines()
    lines[500] = "1,2,1_0,4,5,6"  # float() takes 1_0; np.loadtxt does not
    source = write_lines(tmp_path / "u.csv", *lines)
    assert_one_line_error(run_in_process("predict", model[0], source, "-o", tmp_path / "o.npy",
                                         "--batch-size", 128),
                          "u.csv, line 501: '1_0' is not a number")


def test_non_utf8_csv_names_the_file(tmp_path, model):
    source = write_lines(tmp_path / "latin.csv", b"f0,f1,f2,f3,f4,f5", b"1,2,3,4,5,\xff6")
    assert_one_line_error(run_in_process("predict", model[0], source, "-o", tmp_path / "o.npy"),
                          "latin.csv: not UTF-8 text (byte 0xff")


def test_output_dash_writes_csv_to_stdout(tmp_path, model, x):
    path, net = model
    source = write_input(tmp_path / "in.npy", x[:5])
    result = run("predict", path, source, "-o", "-")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "y0,y1,y2" and len(lines) == 6, result.stdout
    y = np.loadtxt(lines[1:], delimiter=",", dtype=np.float32)
    np.testing.assert_allclose(y, net.forward(x[:5]), rtol=1e-6)
    assert "wrote 5 rows x 3 outputs to standard output" in result.stderr


def test_input_dash_reads_csv_from_stdin(tmp_path, model, x):
    path, net = model
    text = "\n".join(",".join(f"{v:.9g}" for v in row) for row in x[:1]) + "\n"
    result = run_in_process("predict", path, "-", "-o", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    y = np.loadtxt(result.stdout.splitlines()[1:], delimiter=",", ndmin=2, dtype=np.float32)
    np.testing.assert_allclose(y, net.forward(x[:1]), rtol=1e-6)
    assert "wrote 1 row x 3 outputs to standard output" in result.stderr


def test_only_csv_goes_to_stdout():
    with pytest.raises(ValueError, match="only CSV can go to standard output"):
        tabular.open_writer(sys.stdout, ".npy", 3, np.float32)


@pytest.mark.parametrize("content, fragment", [
    (b"", "empty file, not an .npy array"),
    (b"PK\x03\x04 rest of a zip", "a zip archive (an .npz?), not an .npy array"),
    (b"just text", "not an .npy array (no NUMPY magic"),
])
def test_bad_npy_files_are_one_line_errors(tmp_path, model, content, fragment):
    source = tmp_path / "in.npy"
    source.write_bytes(content)
    assert_one_line_error(run("predict", model[0], source, "-o", tmp_path / "o.npy"),
                          f"{source}: {fragment}")


def test_npz_renamed_npy_is_a_one_line_error(tmp_path, model, x):
    source = tmp_path / "in.npy"
    np.savez(tmp_path / "real.npz", x=x)
    os.replace(tmp_path / "real.npz", source)
    assert_one_line_error(run("predict", model[0], source, "-o", tmp_path / "o.npy"),
                          "a zip archive (an .npz?)")


def test_truncated_npy_is_a_one_line_error(tmp_path, model, x):
    source = tmp_path / "in.npy"
    np.save(source, x)
    source.write_bytes(source.read_bytes()[:-100])
    assert_one_line_error(run_in_process("predict", model[0], source, "-o", tmp_path / "o.npy"),
                          "in.npy: truncated")


def test_unwritable_directory_error_names_the_output(tmp_path, model, x, monkeypatch):
    source = write_input(tmp_path / "in.npy", x)

    def refuse(dir, prefix, suffix):
        name = os.path.join(dir, f"{prefix}abc{suffix}")
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr(tabular.tempfile, "mkstemp", refuse)
    message = assert_one_line_error(
        run_in_process("predict", model[0], source, "-o", tmp_path / "out.npy"),
        f"{tmp_path / 'out.npy'}: cannot write there: Permission denied")
    assert ".part" not in message, message


def test_predict_file_is_the_library_api(tmp_path, model, x):
    path, net = model
    source = write_input(tmp_path / "in.csv", x)
    seen = []
    rows = fastmlp.predict_file(net, source, tmp_path / "out.parquet" if pa else
                                tmp_path / "out.npy", batch_size=300, threads=1,
                                columns=[f"f{i}" for i in range(N_IN)],
                                progress=lambda n, fraction: seen.append((n, fraction)))
    assert rows == 1000
    assert [n for n, _ in seen] == [300, 300, 300, 100]
    assert seen[-1][1] == pytest.approx(1.0)
    y = read_output(tmp_path / ("out.parquet" if pa else "out.npy"))
    np.testing.assert_allclose(y, net.forward(x), rtol=1e-6, atol=1e-7)


def test_predict_file_checks_the_width_before_writing(tmp_path, model, x):
    source = write_input(tmp_path / "narrow.npy", x[:, :5])
    with pytest.raises(ValueError, match="has 5 feature columns but the network expects 6"):
        fastmlp.predict_file(model[1], source, tmp_path / "o.npy")
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.npy").exists()


def test_stdin_errors_say_standard_input(tmp_path, model):
    assert_one_line_error(run("predict", model[0], "-", "-o", tmp_path / "o.npy",
                              stdin="1,2,3,4,5,6\n1,2,x,4,5,6\n"),
                          "standard input, line 2: 'x' is not a number")
    assert_one_line_error(run_in_process("predict", model[0], "-", "-o", "-", stdin="1,2\n"),
                          "standard input has 2 feature columns but the network expects 6")
