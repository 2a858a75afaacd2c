"""Derive the polynomial coefficients of fm_erfc_poly_f64 / fm_erfc_poly_f32 (csrc/vmath.h),
the erfc that fm_gelu_f64 / fm_gelu_f32 build on.

For t >= 0, erfc(t) = exp(-t^2) * g(t) with g(t) = exp(t^2) erfc(t) smooth and slowly varying
(g(0) = 1, g(t) ~ 1/(t sqrt(pi)) for large t). With the map

    x = (t - K) / (t + K)          (t in [0, inf) -> x in [-1, 1)),  u = (1 - x) / 2 = K / (t + K)

g(t) = u * G(x) where G is bounded (G(-1) = 1, G(1) = 1/(K sqrt(pi))) and smooth on the part of
[-1, 1) that matters: t up to T_MAX, past which erfc(t) rounds to 0 in the target precision.
G is fitted by a polynomial in x of minimal max relative error (Lawson's iteratively reweighted
least squares on a Chebyshev grid, in mpmath at 64 digits, from mpmath's erfc), then the
coefficients are rounded to the target precision one at a time, lowest degree first, refitting
the higher ones after each rounding. K and the degree were chosen with --scan for the lowest
degree that reaches the target (about 2e-17 for double, 1e-8 for float) with a monomial basis
that stays well conditioned on the interval (sum |c_i x^i| / G below about 4).

The C code evaluates G at the rounded x, which is the exact image of a slightly different
argument t' = t + delta; it corrects with log g(t) = log g(t') + h delta, where
h = -(log g)'(t) = 2/(sqrt(pi) g(t)) - 2t. delta is below 1e-14 (double) / 1e-6 (float), so h
needs only about three digits: a short polynomial in x fitted for absolute error.

Nothing here is taken from an existing erfc implementation: the approximation (map, fitted
functions, coefficients) is derived from scratch by this script. mpmath is needed only to run it
(never at run time):
    /work/venv/bin/pip install mpmath && /work/venv/bin/python scripts/fit_erfc.py
It prints the C polynomial bodies for vmath.h with the fits' max errors (about 20 s).
"""
import argparse
import sys

import mpmath as mp

mp.mp.dps = 64

#              K, degree of G, degree of h, T_MAX, C type
CONFIGS = {
    "f64": (4, 21, 5, 27.3, "double"),
    "f32": (3, 9, 4, 10.15, "float"),
}


def target(x, K):
    """G(x) = exp(t^2) erfc(t) / u at t = K (1 + x) / (1 - x), u = (1 - x) / 2."""
    x = mp.mpf(x)
    if x == -1:
        return mp.mpf(1)
    t = K * (1 + x) / (1 - x)
    u = (1 - x) / 2
    return mp.erfc(t) * mp.exp(t * t) / u


def dlog_g(x, K):
    """h = -d/dt log g(t) = 2/(sqrt(pi) g(t)) - 2t at t = K (1 + x) / (1 - x)."""
    x = mp.mpf(x)
    t = K * (1 + x) / (1 - x)
    return 2 / (mp.sqrt(mp.pi) * mp.erfc(t) * mp.exp(t * t)) - 2 * t


def cheb_grid(a, b, n):
    return [(a + b) / 2 + (b - a) / 2 * mp.cos(mp.pi * (j + mp.mpf(0.5)) / n) for j in range(n)] + [a, b]


def weighted_ls(rows, rhs, w):
    """Solve min sum w_i (rows_i . c - rhs_i)^2 by the normal equations (well conditioned basis)."""
    n = len(rows[0])
    A = mp.matrix(n, n)
    y = mp.matrix(n, 1)
    for r, b, wi in zip(rows, rhs, w):
        for i in range(n):
            wr = wi * r[i]
            y[i] += wr * b
            for j in range(i, n):
                A[i, j] += wr * r[j]
    for i in range(n):
        for j in range(i):
            A[i, j] = A[j, i]
    return mp.lu_solve(A, y)


def cheb_to_monomial(c, a, b):
    """Coefficients in x of sum c_k T_k(y), y = (2x - a - b) / (b - a)."""
    n = len(c)
    # T_k(y) as polynomials in y
    T = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]
    for k in range(2, n):
        prev, prev2 = T[-1], T[-2]
        nxt = [mp.mpf(0)] + [2 * v for v in prev]
        for i, v in enumerate(prev2):
            nxt[i] -= v
        T.append(nxt)
    py = [mp.mpf(0)] * n
    for k in range(n):
        for i, v in enumerate(T[k]):
            py[i] += c[k] * v
    # substitute y = alpha x + beta
    alpha, beta = 2 / (b - a), -(a + b) / (b - a)
    px = [mp.mpf(0)] * n
    for i in range(n):  # (alpha x + beta)^i
        for j in range(i + 1):
            px[j] += py[i] * mp.binomial(i, j) * alpha ** j * beta ** (i - j)
    return px


def horner(c, x):
    p = mp.mpf(0)
    for v in reversed(c):
        p = p * x + v
    return p


def fit(func, K, deg, tmax, ctype, relative=True, iters=40, npts=None, quiet=False):
    """Polynomial in x of degree deg minimising the max relative (or absolute) error of
    func(x, K) on x in [-1, x(tmax)], coefficients rounded to ctype."""
    a = mp.mpf(-1)
    b = (mp.mpf(tmax) - K) / (mp.mpf(tmax) + K)
    xs = cheb_grid(a, b, npts or 12 * deg)
    fs = [func(x, K) for x in xs]
    sc = [1 / f if relative else mp.mpf(1) for f in fs]
    ys = [(2 * x - a - b) / (b - a) for x in xs]
    rows = []  # Chebyshev basis T_k(y), scaled for relative error
    for y, s in zip(ys, sc):
        T = [mp.mpf(1), y]
        for _ in range(2, deg + 1):
            T.append(2 * y * T[-1] - T[-2])
        rows.append([v * s for v in T[: deg + 1]])
    rhs = [f * s for f, s in zip(fs, sc)]
    w = [mp.mpf(1)] * len(xs)
    for it in range(iters):
        c = weighted_ls(rows, rhs, w)
        err = [abs(sum(r[i] * c[i] for i in range(deg + 1)) - v) for r, v in zip(rows, rhs)]
        emax = max(err)
        w = [wi * e for wi, e in zip(w, err)]
        total = sum(w)
        w = [wi / total for wi in w]
        if not quiet:
            print(f"  lawson {it:2d}: max {'rel' if relative else 'abs'} err {mp.nstr(emax, 4)}",
                  file=sys.stderr)
    mono = cheb_to_monomial([c[i] for i in range(deg + 1)], a, b)
    # Round to the target type one coefficient at a time, lowest degree first, refitting the rest
    # (monomial basis in x, final Lawson weights).
    rnd = (lambda v: mp.mpf(float(v))) if ctype == "double" else (lambda v: mp.mpf(to_f32(v)))
    fixed = []
    for i in range(deg + 1):
        fixed.append(rnd(mono[i]))
        if i == deg:
            break
        mrows = [[x ** j * s for j in range(i + 1, deg + 1)] for x, s in zip(xs, sc)]
        mrhs = [(f - horner(fixed, x)) * s for x, f, s in zip(xs, fs, sc)]
        rest = weighted_ls(mrows, mrhs, w)
        mono = fixed + [rest[j] for j in range(deg - i)]
    return fixed, (a, b)


def to_f32(v):
    import struct
    return struct.unpack("f", struct.pack("f", float(v)))[0]


def check(func, coeffs, K, ab, relative=True, n=3000):
    """Max error (relative or absolute) of the rounded polynomial against func on a fine grid,
    and the conditioning sum |c_i x^i| / |func|."""
    a, b = ab
    emax, cond = mp.mpf(0), mp.mpf(0)
    for j in range(n + 1):
        x = a + (b - a) * j / n
        f = func(x, K)
        e = abs(horner(coeffs, x) - f)
        emax = max(emax, e / abs(f) if relative else e)
        cond = max(cond, sum(abs(c) * abs(x) ** i for i, c in enumerate(coeffs)) / abs(f))
    return emax, cond


def c_literal(v, ctype):
    s = repr(float(v))  # shortest string that reads back as the same double
    if ctype == "float":
        s = f"{to_f32(v):.9g}"
        if "e" not in s and "." not in s:
            s += ".0"
        s += "f"
    return s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("which", nargs="*", help="f64 and/or f32 (default: both)")
    ap.add_argument("--scan", action="store_true", help="scan K and degree instead")
    args = ap.parse_args(argv)
    for name in args.which:
        if name not in CONFIGS:
            ap.error(f"unknown {name!r}; choose from {', '.join(CONFIGS)}")
    for name in args.which or list(CONFIGS):
        K, deg, hdeg, tmax, ctype = CONFIGS[name]
        madd = "FM_MADD_F64" if ctype == "double" else "FM_MADD_F32"
        if args.scan:
            for k in (1.5, 2, 2.5, 3, 4, 5, 6):
                for d in range(deg - 2, deg + 3):
                    coeffs, ab = fit(target, k, d, tmax, ctype, iters=25, quiet=True)
                    e, cond = check(target, coeffs, k, ab, n=600)
                    print(f"{name} K={k} deg={d}: max rel err {mp.nstr(e, 3)}, cond {mp.nstr(cond, 3)}")
            continue
        print(f"fitting {name}: K={K}, degree {deg}, t in [0, {tmax}]", file=sys.stderr)
        for what, func, d, rel in (("G", target, deg, True), ("h", dlog_g, hdeg, False)):
            coeffs, ab = fit(func, K, d, tmax, ctype, relative=rel)
            e, cond = check(func, coeffs, K, ab, relative=rel)
            print(f"/* {name}: {what}(x) on x in [-1, {float(ab[1]):.6f}], K = {K}, degree {d}: max "
                  f"{'relative' if rel else 'absolute'} error {mp.nstr(e, 3)} (coefficients as "
                  f"rounded), sum|c_i x^i|/|{what}| <= {mp.nstr(cond, 3)} */")
            print(f"    {ctype} p = {c_literal(coeffs[d], ctype)};")
            for i in reversed(range(d)):
                print(f"    p = {madd}(p, x, {c_literal(coeffs[i], ctype)});")


if __name__ == "__main__":
    main()
