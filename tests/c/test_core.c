/* The C core on its own, against a plain C reference: every activation, the
 * dense layer and the forward pass, in float and double, for every kernel
 * variant this machine can run; and a row's bits, which must not depend on
 * the batch it is computed in, its position or the thread count.
 *
 * Built by .ci/cross (natively, and for arm64 under qemu) from the sources in
 * csrc/; prints one line per variant and exits nonzero on the first variant
 * with a mismatch. The network is built through the small helpers below
 * (make_layer, run_forward), the only code that knows the C API's shape. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "fastmlp.h"

static long checks, failures;

#define CHECK(cond, ...)                                             \
    do {                                                             \
        checks++;                                                    \
        if (!(cond)) {                                               \
            if (failures++ < 20) {                                   \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                fprintf(stderr, __VA_ARGS__);                        \
                fputc('\n', stderr);                                 \
            }                                                        \
        }                                                            \
    } while (0)

/* -- deterministic inputs ------------------------------------------------------------ */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static double uniform(double lo, double hi) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    const uint64_t r = rng_state * 0x2545F4914F6CDD1Du;
    return lo + (hi - lo) * (double)(r >> 11) / 9007199254740992.0;
}

/* -- the reference, in double -------------------------------------------------------- */
static double sigmoid(double z) {
    const double e = exp(-fabs(z));
    return z >= 0 ? 1 / (1 + e) : e / (1 + e);
}

static double ref_activation(fm_activation a, double z) {
    switch (a.kind) {
    case FM_IDENTITY: return z;
    case FM_RELU: return z < 0 ? 0.0 : z;
    case FM_TANH: return tanh(z);
    case FM_SIGMOID: return sigmoid(z);
    case FM_LEAKY_RELU: return z > 0 ? z : a.p0 * z;
    case FM_ELU: return z > 0 ? z : a.p0 * expm1(z);
    case FM_GELU: return 0.5 * z * erfc(-z / sqrt(2.0));
    case FM_GELU_TANH: return z * sigmoid(2 * sqrt(2 / 3.14159265358979323846) * (z + 0.044715 * z * z * z));
    case FM_SILU: return z * sigmoid(z);
    case FM_SOFTPLUS: {
        const double bz = a.p0 * z;
        return bz > a.p1 ? z : (fmax(bz, 0) + log1p(exp(-fabs(bz)))) / a.p0;
    }
    default: return NAN;
    }
}

/* Row-wise, in place; softmax needs the whole row. */
static void ref_activate_row(fm_activation a, double *z, int n) {
    if (a.kind != FM_SOFTMAX) {
        for (int j = 0; j < n; j++) z[j] = ref_activation(a, z[j]);
        return;
    }
    double m = z[0], s = 0;
    for (int j = 1; j < n; j++) m = z[j] > m ? z[j] : m;
    for (int j = 0; j < n; j++) s += (z[j] = exp(z[j] - m));
    for (int j = 0; j < n; j++) z[j] /= s;
}

static int close_enough(double got, double want, double scale, int is_double) {
    const double tol = is_double ? 1e-12 : 1e-5;
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= tol * (fabs(want) + scale);
}

/* -- the C API, through helpers ------------------------------------------------------ */
typedef struct {
    int n_in, n_out;
    double *w, *b; /* row-major n_in x n_out, and n_out */
    fm_activation act;
} net_layer;

static net_layer random_layer(int n_in, int n_out, fm_activation act) {
    net_layer l = {n_in, n_out, malloc(sizeof(double) * n_in * n_out), malloc(sizeof(double) * n_out), act};
    const double s = 1.0 / sqrt((double)n_in);
    for (int i = 0; i < n_in * n_out; i++) l.w[i] = uniform(-s, s);
    for (int j = 0; j < n_out; j++) l.b[j] = uniform(-0.5, 0.5);
    return l;
}

/* An fm_layer of l's weights in the given precision (packed as the core wants). */
static fm_layer make_layer(const net_layer *l, int is_double) {
    const size_t elem = is_double ? sizeof(double) : sizeof(float);
    const size_t n_w = (size_t)l->n_in * l->n_out;
    fm_layer out = {l->n_in, l->n_out, NULL, NULL, l->act};
    const size_t packed = is_double ? fm_packed_size_f64(l->n_in, l->n_out) : fm_packed_size_f32(l->n_in, l->n_out);
    void *pw = fm_aligned_alloc(packed * elem), *pb = fm_aligned_alloc(l->n_out * elem);
    if (is_double) {
        fm_pack_f64(l->w, l->n_in, l->n_out, pw);
        memcpy(pb, l->b, l->n_out * elem);
    } else {
        float *w = malloc(n_w * sizeof(float));
        for (size_t i = 0; i < n_w; i++) w[i] = (float)l->w[i];
        fm_pack_f32(w, l->n_in, l->n_out, pw);
        free(w);
        for (int j = 0; j < l->n_out; j++) ((float *)pb)[j] = (float)l->b[j];
    }
    out.packed_weights = pw;
    out.bias = pb;
    return out;
}

static void free_layer(fm_layer *l) {
    fm_aligned_free((void *)l->packed_weights);
    fm_aligned_free((void *)l->bias);
}

/* x and out in the layer's precision (float or double arrays). */
static int run_forward(const fm_layer *layers, int n, const void *x, size_t rows, void *out, int threads,
                       int is_double) {
    return is_double ? fm_forward_f64(layers, n, x, rows, out, threads)
                     : fm_forward_f32(layers, n, x, rows, out, threads);
}

static void run_dense(const fm_layer *layer, const void *x, size_t ldx, size_t rows, void *out, size_t ldo,
                      int apply_activation, int is_double) {
    if (is_double) fm_dense_f64(layer, x, ldx, rows, out, ldo, apply_activation);
    else fm_dense_f32(layer, x, ldx, rows, out, ldo, apply_activation);
}

static void run_activate(fm_activation a, void *z, size_t rows, size_t cols, size_t ld, int is_double) {
    if (is_double) fm_activate_f64(a, z, rows, cols, ld);
    else fm_activate_f32(a, z, rows, cols, ld);
}

/* Element i of a float or double array, and its setter. */
static double get(const void *a, size_t i, int is_double) {
    return is_double ? ((const double *)a)[i] : ((const float *)a)[i];
}
static void set(void *a, size_t i, double v, int is_double) {
    if (is_double) ((double *)a)[i] = v;
    else ((float *)a)[i] = (float)v;
}
static void *array(size_t n, int is_double) { return calloc(n ? n : 1, is_double ? 8 : 4); }

/* The reference forward pass of rows x n_in inputs (given in the layer's
 * precision) into want (double); returns the largest |term| sum, for the tolerance. */
static double ref_forward(const net_layer *net, int n, const void *x, size_t rows, double *want, int is_double) {
    int widest = net[0].n_in;
    for (int l = 0; l < n; l++) widest = net[l].n_out > widest ? net[l].n_out : widest;
    double *a = malloc(sizeof(double) * widest), *z = malloc(sizeof(double) * widest), scale = 1;
    for (size_t r = 0; r < rows; r++) {
        for (int i = 0; i < net[0].n_in; i++) a[i] = get(x, r * net[0].n_in + i, is_double);
        for (int l = 0; l < n; l++) {
            for (int j = 0; j < net[l].n_out; j++) {
                /* the weights as the core holds them, rounded to the precision */
                double s = is_double ? net[l].b[j] : (float)net[l].b[j], mag = fabs(s);
                for (int i = 0; i < net[l].n_in; i++) {
                    const double w = is_double ? net[l].w[i * net[l].n_out + j] : (float)net[l].w[i * net[l].n_out + j];
                    s += a[i] * w;
                    mag += fabs(a[i] * w);
                }
                z[j] = s;
                scale = mag > scale ? mag : scale;
            }
            ref_activate_row(net[l].act, z, net[l].n_out);
            memcpy(a, z, sizeof(double) * net[l].n_out);
        }
        memcpy(want + r * net[n - 1].n_out, a, sizeof(double) * net[n - 1].n_out);
    }
    free(a);
    free(z);
    return scale;
}

/* -- the checks ---------------------------------------------------------------------- */
static const fm_activation activations[] = {
    {FM_IDENTITY, 0, 0}, {FM_RELU, 0, 0},      {FM_TANH, 0, 0},      {FM_SIGMOID, 0, 0},
    {FM_SOFTMAX, 0, 0},  {FM_LEAKY_RELU, 0.1, 0}, {FM_ELU, 1.5, 0},  {FM_GELU, 0, 0},
    {FM_GELU_TANH, 0, 0}, {FM_SILU, 0, 0},     {FM_SOFTPLUS, 1.0, INFINITY}, {FM_SOFTPLUS, 2.0, 20.0},
};
#define N_ACTIVATIONS (int)(sizeof activations / sizeof activations[0])

static void check_activations(int is_double) {
    enum { ROWS = 7, COLS = 45, LD = 48 };
    static const double special[] = {0.0, -0.0, 1e-30, -1e-30, 0.5, -0.5, 1, -1, 5, -5, 20, -20, 40, -40, 90, -90, 700, -700};
    const int n_special = (int)(sizeof special / sizeof special[0]);
    for (int k = 0; k < N_ACTIVATIONS; k++) {
        const fm_activation a = activations[k];
        void *z = array(ROWS * LD, is_double);
        double want[ROWS * LD];
        for (int i = 0; i < ROWS * LD; i++) {
            double v = i < n_special ? special[i] : uniform(-12, 12);
            if (!is_double && fabs(v) > 80) v = v > 0 ? 80 : -80; /* within float's exp range */
            set(z, i, v, is_double);
            want[i] = get(z, i, is_double);
        }
        for (int r = 0; r < ROWS; r++) ref_activate_row(a, want + r * LD, COLS);
        run_activate(a, z, ROWS, COLS, LD, is_double);
        for (int r = 0; r < ROWS; r++)
            for (int c = 0; c < LD; c++) {
                const size_t i = (size_t)r * LD + c;
                const double got = get(z, i, is_double);
                if (c >= COLS) { /* beyond cols, within the row stride: untouched */
                    CHECK(got == want[i], "%s activation %d wrote beyond its columns", is_double ? "f64" : "f32", a.kind);
                    continue;
                }
                CHECK(close_enough(got, want[i], 1e-30, is_double), "%s activation %d (p0=%g) of z=%.17g: got %.17g, want %.17g",
                      is_double ? "f64" : "f32", a.kind, a.p0, i < (size_t)n_special ? special[i] : NAN, got, want[i]);
            }
        free(z);
    }
}

static void check_dense(int is_double) {
    const int n_in = 37, n_out = 45; /* not whole panels */
    net_layer l = random_layer(n_in, n_out, (fm_activation){FM_TANH, 0, 0});
    fm_layer layer = make_layer(&l, is_double);
    static const size_t row_counts[] = {1, 2, 3, 4, 8, 9, 13, 100};
    for (size_t t = 0; t < sizeof row_counts / sizeof row_counts[0]; t++) {
        const size_t rows = row_counts[t], ldx = n_in + 3, ldo = n_out + 5;
        void *x = array(rows * ldx, is_double), *out = array(rows * ldo, is_double);
        void *xd = array(rows * n_in, is_double);
        for (size_t r = 0; r < rows; r++)
            for (int i = 0; i < n_in; i++) {
                set(x, r * ldx + i, uniform(-2, 2), is_double);
                set(xd, r * n_in + i, get(x, r * ldx + i, is_double), is_double);
            }
        double *want = malloc(sizeof(double) * rows * n_out);
        for (int apply = 0; apply <= 1; apply++) {
            net_layer lin = l;
            if (!apply) lin.act = (fm_activation){FM_IDENTITY, 0, 0};
            const double scale = ref_forward(&lin, 1, xd, rows, want, is_double);
            run_dense(&layer, x, ldx, rows, out, ldo, apply, is_double);
            for (size_t r = 0; r < rows; r++)
                for (int j = 0; j < n_out; j++)
                    CHECK(close_enough(get(out, r * ldo + j, is_double), want[r * n_out + j], scale, is_double),
                          "%s dense rows=%zu apply=%d [%zu,%d]: got %.17g, want %.17g", is_double ? "f64" : "f32", rows,
                          apply, r, j, get(out, r * ldo + j, is_double), want[r * n_out + j]);
        }
        free(x), free(out), free(xd), free(want);
    }
    free_layer(&layer);
    free(l.w), free(l.b);
}

static void check_forward(int is_double) {
    enum { N_LAYERS = 3, N_IN = 40, N_OUT = 5, MAX_ROWS = 1500 };
    net_layer net[N_LAYERS] = {
        random_layer(N_IN, 96, (fm_activation){FM_RELU, 0, 0}),
        random_layer(96, 33, (fm_activation){FM_GELU, 0, 0}),
        random_layer(33, N_OUT, (fm_activation){FM_SOFTMAX, 0, 0}),
    };
    fm_layer layers[N_LAYERS];
    for (int l = 0; l < N_LAYERS; l++) layers[l] = make_layer(&net[l], is_double);
    void *x = array((size_t)MAX_ROWS * N_IN, is_double), *out = array((size_t)MAX_ROWS * N_OUT, is_double);
    for (size_t i = 0; i < (size_t)MAX_ROWS * N_IN; i++) set(x, i, uniform(-3, 3), is_double);
    double *want = malloc(sizeof(double) * MAX_ROWS * N_OUT);
    const double scale = ref_forward(net, N_LAYERS, x, MAX_ROWS, want, is_double);

    /* Each row alone: the bits every batch must reproduce. */
    void *alone = array((size_t)MAX_ROWS * N_OUT, is_double);
    const size_t elem = is_double ? 8 : 4;
    for (size_t r = 0; r < MAX_ROWS; r++)
        CHECK(run_forward(layers, N_LAYERS, (char *)x + r * N_IN * elem, 1, (char *)alone + r * N_OUT * elem, 1,
                          is_double) == 0, "forward of one row failed");
    for (size_t i = 0; i < (size_t)MAX_ROWS * N_OUT; i++)
        CHECK(close_enough(get(alone, i, is_double), want[i], scale, is_double), "%s forward row %zu col %zu: got %.17g, want %.17g",
              is_double ? "f64" : "f32", i / N_OUT, i % N_OUT, get(alone, i, is_double), want[i]);

    static const size_t row_counts[] = {2, 3, 7, 8, 9, 24, 25, 97, 300, 1000, MAX_ROWS};
    static const int thread_counts[] = {1, 2, 0};
    for (size_t t = 0; t < sizeof row_counts / sizeof row_counts[0]; t++)
        for (size_t h = 0; h < sizeof thread_counts / sizeof thread_counts[0]; h++) {
            const size_t rows = row_counts[t], first = (MAX_ROWS - rows) / 2; /* any position */
            memset(out, 0, (size_t)MAX_ROWS * N_OUT * elem);
            CHECK(run_forward(layers, N_LAYERS, (char *)x + first * N_IN * elem, rows, out, thread_counts[h],
                              is_double) == 0, "forward failed");
            for (size_t r = 0; r < rows; r++)
                CHECK(memcmp((char *)out + r * N_OUT * elem, (char *)alone + (first + r) * N_OUT * elem, N_OUT * elem) == 0,
                      "%s row %zu in a batch of %zu on %d threads differs from the row alone", is_double ? "f64" : "f32",
                      first + r, rows, thread_counts[h]);
        }
    for (int l = 0; l < N_LAYERS; l++) free_layer(&layers[l]), free(net[l].w), free(net[l].b);
    free(x), free(out), free(want), free(alone);
}

static void print_machine(void) {
    const uint32_t f = fm_cpu_features();
    printf("cpu features:");
    for (int i = 0; i < FM_CPU_N_FEATURES; i++)
        if (f & (1u << i)) printf(" %s", fm_cpu_feature_name(1u << i));
    const fm_cache_sizes c = fm_cpu_caches();
    printf("\ncaches: L1d %zu KiB, L2 %zu KiB, L3 %zu KiB (%zu KiB per core; measured mask %d); default threads %d\n",
           c.l1d / 1024, c.l2 / 1024, c.l3 / 1024, c.l3_per_core / 1024, c.known, fm_default_threads());
}

int main(void) {
    print_machine();
    int tested = 0;
    for (int k = 0; k < FM_N_KERNELS; k++) {
        if (!fm_kernel_supported(k)) {
            printf("kernel %-8s not supported here, skipped\n", fm_kernel_name(k));
            continue;
        }
        if (fm_select_kernel(fm_kernel_name(k)) != 0) {
            printf("kernel %s: cannot be selected\n", fm_kernel_name(k));
            return 1;
        }
        const long checks_before = checks, failures_before = failures;
        for (int is_double = 0; is_double <= 1; is_double++) {
            check_activations(is_double);
            check_dense(is_double);
            check_forward(is_double);
        }
        printf("kernel %-8s %ld checks, %ld failed\n", fm_kernel_name(k), checks - checks_before,
               failures - failures_before);
        tested++;
    }
    printf("%s: %d kernel variant(s), %ld checks, %ld failures\n", failures ? "FAILED" : "OK", tested, checks, failures);
    return failures || tested == 0 ? 1 : 0;
}
