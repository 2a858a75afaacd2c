/* fastmlp C core: the forward pass of a dense network over packed weights.
 *
 * Plain C11, no Python API. Every function exists once per floating-point type
 * (suffix _f32 / _f64). The kernels are compiled once per instruction set
 * (generic, AVX2+FMA, AVX-512) and chosen at run time (dispatch.c). */
#ifndef FASTMLP_H
#define FASTMLP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Activation codes; the order is part of the Cython bridge (_core.pxd). */
typedef enum {
    FM_IDENTITY = 0,
    FM_RELU,
    FM_TANH,
    FM_SIGMOID,
    FM_SOFTMAX,
    FM_LEAKY_RELU, /* p0: negative slope */
    FM_ELU,        /* p0: alpha */
    FM_GELU,       /* erf form */
    FM_GELU_TANH,  /* tanh approximation */
    FM_SILU,
    FM_SOFTPLUS,   /* p0: beta, p1: threshold (beta*z above it gives z) */
    FM_SELU,       /* PyTorch's alpha and scale */
    FM_CELU,       /* p0: alpha (nonzero) */
    FM_MISH,
    FM_HARDSWISH,  /* z relu6(z + 3) / 6 */
    FM_HARDSIGMOID, /* p0: alpha, p1: beta; clip(alpha z + beta, 0, 1) */
    FM_RELU6,
    FM_HARDTANH,   /* p0: min, p1: max (min <= max, either may be infinite) */
    FM_PRELU,      /* p0: slope, or one slope per feature in vec */
    FM_SOFTSIGN,
    FM_LOG_SOFTMAX, /* per row */
    FM_N_ACTIVATIONS
} fm_activation_kind;

/* vec is NULL, or (FM_PRELU only) one value per output feature in the network's dtype. */
typedef struct {
    int kind;
    double p0, p1;
    const void *vec; /* FM_PRELU: one slope per feature, or NULL */
} fm_activation;

/* The activation's name as the Python API spells it ("relu", "log_softmax"; NULL for an
 * unknown kind). */
const char *fm_activation_name(int kind);

/* Softmax and log-softmax normalise over the whole row: a kernel that computes only some
 * of a layer's columns leaves them to whoever sees every column. */
static inline int fm_activation_needs_whole_rows(int kind) {
    return kind == FM_SOFTMAX || kind == FM_LOG_SOFTMAX;
}

/* Weights are packed in column panels of FM_PANEL_BYTES: panel p holds, for
 * every input k, the outputs p*NR .. p*NR+NR-1 (zero padded), NR = 32 floats
 * or 16 doubles. The layout is the same for every instruction set, so the
 * kernel variant can be switched without repacking. */
#define FM_PANEL_BYTES 128
#define FM_ALIGN 64
#define FM_NR_F32 (FM_PANEL_BYTES / 4)
#define FM_NR_F64 (FM_PANEL_BYTES / 8)
/* Inputs per block of the dense kernel unless a plan says otherwise (fm_layer.k_block):
 * its outputs are summed in registers over a block, kept in memory between blocks. */
#define FM_KC 256

/* How a dense layer stores its weights: in the network's dtype, or reduced (float32
 * networks only): bfloat16, or int8 with one scale per output column. */
enum { FM_PRECISION_NATIVE = 0, FM_PRECISION_BF16 = 1, FM_PRECISION_INT8 = 2 };

typedef struct {
    int n_in, n_out;
    const void *packed_weights; /* native: n_panels * n_in * NR values, FM_ALIGN aligned;
                                 * reduced: see fm_pack_bf16 / fm_pack_int8 */
    const void *bias;           /* n_out values */
    fm_activation activation;
    int precision;              /* FM_PRECISION_* */
    const float *scales;        /* int8: n_out column scales (w = q * scale) */
    int method;                 /* FM_DENSE_*: how the kernel runs it (native precision) */
    int k_block;                /* inputs per block of its panels (0: FM_KC); any value
                                 * gives the same bits, only the speed differs */
} fm_layer;

/* How a dense layer of several rows runs: chosen by fm_dense_is_narrow (AUTO), or forced
 * (a network's plan override, for tests). PANELS: each micro-tile of rows against column
 * panels of NR outputs; NARROW: the vector lanes hold rows, one accumulator per output, for
 * layers of few outputs, where most of a panel would be padding (and where the inputs and
 * outputs of a row take at most half a vector, several rows share one). All sum every output in
 * the same order, so the choice never changes a bit. */
enum { FM_DENSE_AUTO = 0, FM_DENSE_PANELS = 1, FM_DENSE_NARROW = 2 };

/* Whether a kernel whose narrow-layer path holds `narrow` accumulators (kernels.def; 0: none)
 * runs `rows` rows of this layer, panels [first, end), as a narrow layer. Automatically only
 * when it saves at least half of each vector; forced, for any layer of one panel. */
static inline int fm_dense_is_narrow(const fm_layer *layer, int narrow, int nr, size_t rows,
                                     int first_panel, int end_panel) {
    if (narrow <= 0 || rows < 2 || layer->precision != FM_PRECISION_NATIVE ||
        first_panel != 0 || end_panel != 1 || layer->n_out > nr)
        return 0;
    if (layer->method == FM_DENSE_NARROW) return 1;
    return layer->method == FM_DENSE_AUTO && 2 * layer->n_out <= nr && layer->n_out <= narrow;
}

/* -- Networks: an opaque, owning handle built step by step -----------------------------
 *
 * A network is a list of steps applied to each row in order: dense layers (with their
 * activation), per-feature affine maps, layer normalisation, activations on their own and
 * residual blocks (x + f(x)). Every step works on whole rows independently, so a row's
 * result never depends on the batch it came in. All arrays passed to the builders are in
 * the network's dtype (float or double) and are copied; the caller keeps its own. */

/* Status codes returned by the fm_network_* functions. */
enum {
    FM_OK = 0,
    FM_ERR_NO_MEMORY = -1,
    FM_ERR_DTYPE = -2,    /* a forward function of the other dtype */
    FM_ERR_ARGUMENT = -3, /* a width that does not chain, an unbalanced residual block, NULL */
    FM_ERR_STATE = -4     /* building a finished network, or running an unfinished one */
};

/* Version of this C API (fm_network_*); bumped on any incompatible change. */
#define FM_C_API_VERSION 1

typedef struct fm_network fm_network;

/* A new, empty network computing in double (is_double) or float; NULL without memory. */
fm_network *fm_network_new(int is_double);
void fm_network_free(fm_network *net);
/* x W + b then act; w is row-major n_in x n_out, bias n_out values or NULL (zeros);
 * act.vec, when set, holds n_out values and is copied. */
int fm_network_dense(fm_network *net, int n_in, int n_out, const void *w, const void *bias,
                     fm_activation act);
/* x * scale + shift per feature; scale / shift: width values, or NULL for 1 / 0. */
int fm_network_affine(fm_network *net, int width, const void *scale, const void *shift);
/* (x - mean) / sqrt(var + eps) * scale + shift over each row (biased variance). */
int fm_network_layernorm(fm_network *net, int width, const void *scale, const void *shift,
                         double eps);
int fm_network_activation(fm_network *net, int width, fm_activation act);
/* A dense layer of a float32 network with reduced-precision weights: w holds n_in x n_out
 * bfloat16 bit patterns (precision FM_PRECISION_BF16) or int8 values with n_out column
 * scales (FM_PRECISION_INT8); bias n_out floats or NULL. Inputs are rounded to bfloat16,
 * or quantized to int8 with one scale per row, inside the tile. */
int fm_network_dense_reduced(fm_network *net, int precision, int n_in, int n_out,
                             const void *w, const float *scales, const float *bias,
                             fm_activation act);
/* Steps between begin and end form f of a residual block x + f(x); blocks nest. */
int fm_network_residual_begin(fm_network *net, int width);
int fm_network_residual_end(fm_network *net);
/* Ends the building (every block closed, at least one step): the network can run. */
int fm_network_finish(fm_network *net);

int fm_network_n_inputs(const fm_network *net);
int fm_network_n_outputs(const fm_network *net);
int fm_network_is_double(const fm_network *net);
/* The threads a forward call uses when it passes threads <= 0 (0, the start: all cores
 * or the process's setting, fm_default_threads()). */
void fm_network_set_threads(fm_network *net, int threads);
int fm_network_threads(const fm_network *net);
/* Multiply-adds per row (dense layers), a measure of a call's work. */
double fm_network_macs_per_row(const fm_network *net);

/* -- The plan: how a call runs, and the choices a caller may force ----------------------
 *
 * Each call plans its pass from the network's widths and dtype, the kernel variant, the
 * rows and the threads: tiles of rows that go through every step while they stay in cache
 * (their height), how threads share the work (tiles, or each dense layer's columns for
 * small batches) and how each dense layer runs (FM_DENSE_*). No choice changes a bit of
 * any row. Options force choices, for tests that compare every plan with the others. */
enum { FM_SPLIT_AUTO = 0, FM_SPLIT_ROWS = 1, FM_SPLIT_COLUMNS = 2 };
typedef struct {
    int tile_rows;    /* rows per tile (rounded up to a multiple of 24); 0: planned */
    int split;        /* FM_SPLIT_*: how several threads share a call */
    int dense_method; /* FM_DENSE_AUTO, _PANELS or _NARROW, for every dense layer */
    int k_block;      /* inputs per block of every dense layer's panels; 0: planned */
} fm_plan_options;
/* Before fm_network_finish (FM_ERR_STATE after); FM_ERR_ARGUMENT for a value out of range. */
int fm_network_set_plan_options(fm_network *net, const fm_plan_options *options);

/* The inputs per block a dense step's panels run in (fm_layer.k_block as planned), or
 * FM_ERR_ARGUMENT for a step that is not a dense layer. */
int fm_network_step_k_block(const fm_network *net, int step);
/* A dense layer's method as a plan reports it: FM_DENSE_PANELS, FM_DENSE_NARROW, or: */
enum { FM_DENSE_ONE_ROW = 3, FM_DENSE_REDUCED = 4 };
typedef struct {
    int threads;          /* the call's threads (1: the caller's alone) */
    int split_columns;    /* the threads share each dense layer by columns, tile after tile */
    size_t tile_rows, n_tiles;
    size_t scratch_bytes; /* the call's scratch memory beyond its input and output */
    size_t tile_bytes;    /* the scratch a tile aims at (half of one core's L2) */
} fm_plan;
/* The plan of a call of `rows` rows (>= 1) on `threads` threads (<= 0: the network's
 * setting); FM_OK, or FM_ERR_STATE / FM_ERR_ARGUMENT. */
int fm_network_plan(const fm_network *net, size_t rows, int threads, fm_plan *plan);
/* How dense step `step` runs in that call (FM_DENSE_*), or FM_ERR_ARGUMENT for a step
 * that is not a dense layer. */
int fm_network_step_method(const fm_network *net, size_t rows, int threads, int step);

/* out (rows x n_outputs) from x (rows x n_inputs), both C-contiguous, on up to `threads`
 * threads (<= 0: the network's setting). Returns FM_OK or an FM_ERR_* code. */
int fm_network_forward_f32(const fm_network *net, const float *x, size_t rows, float *out,
                           int threads);
int fm_network_forward_f64(const fm_network *net, const double *x, size_t rows, double *out,
                           int threads);
/* What step `step` (0-based, in build order; residual begin/end count as steps) outputs
 * for x, single-threaded; for a dense step with pre_activation set, x W + b before its
 * activation. out holds rows x fm_network_step_width(net, step) values. */
int fm_network_trace_f32(const fm_network *net, int step, int pre_activation, const float *x,
                         size_t rows, float *out);
int fm_network_trace_f64(const fm_network *net, int step, int pre_activation, const double *x,
                         size_t rows, double *out);
int fm_network_n_steps(const fm_network *net);
/* The width of step's output, or FM_ERR_ARGUMENT. */
int fm_network_step_width(const fm_network *net, int step);

/* -- The steps, as the forward pass runs them (internal to the C core) ----------------- */

typedef enum {
    FM_STEP_DENSE = 0,
    FM_STEP_AFFINE,
    FM_STEP_LAYERNORM,
    FM_STEP_ACTIVATION,
    FM_STEP_RESIDUAL_BEGIN,
    FM_STEP_RESIDUAL_END
} fm_step_kind;

/* Where a step reads and writes inside a tile: the caller's input, the caller's output,
 * or scratch buffer 0, 1, ... */
enum { FM_BUF_INPUT = -1, FM_BUF_OUTPUT = -2 };

typedef struct {
    int kind;
    fm_layer layer;            /* widths (n_in == n_out but for dense); dense: weights, bias,
                                * activation; activation step: activation */
    const void *scale, *shift; /* affine, layernorm: width values or NULL (1, 0) */
    double eps;                /* layernorm */
    int src, dst, saved;       /* buffers (FM_BUF_* or scratch index); saved: residual end */
} fm_step;

/* FM_ALIGN-aligned memory for packed weights (NULL when out of memory or bytes is 0). */
void *fm_aligned_alloc(size_t bytes);
void fm_aligned_free(void *p);

/* Size in elements of the packed weights of an n_in x n_out layer. */
size_t fm_packed_size_f32(int n_in, int n_out);
size_t fm_packed_size_f64(int n_in, int n_out);
/* Reduced-precision weights are packed in column panels of FM_NR_F32 columns; every
 * variant reads the same layout, so the kernel can be switched without repacking.
 *   bfloat16: a panel is fm_bf16_pairs(n_in) rows of NR pairs of inputs (k even, k odd)
 *     side by side: (k, c) at k / 2 * 2 * NR + 2 * c + k % 2 (two products per 32-bit
 *     lane, as vdpbf16ps and AMX's tdpbf16ps read them).
 *   int8: a panel begins with NR int32 column sums (for vpdpbusd's unsigned inputs), then
 *     fm_int8_quads(n_in) rows of NR quads of inputs: (k, c) at 4 * NR + k / 4 * 4 * NR +
 *     4 * c + k % 4 bytes (four products per lane, vpdpbusd and tdpbssd).
 * Rows past the inputs are zero, to a multiple of FM_REDUCED_K_ROWS: an AMX tile reads
 * that many rows at once. */
#define FM_REDUCED_K_ROWS 16
static inline size_t fm_bf16_pairs(int n_in) {
    const size_t rows = ((size_t)n_in + 1) / 2;
    return (rows + FM_REDUCED_K_ROWS - 1) / FM_REDUCED_K_ROWS * FM_REDUCED_K_ROWS;
}
static inline size_t fm_int8_quads(int n_in) {
    const size_t rows = ((size_t)n_in + 3) / 4;
    return (rows + FM_REDUCED_K_ROWS - 1) / FM_REDUCED_K_ROWS * FM_REDUCED_K_ROWS;
}
/* Bytes of one panel, and of a layer's packed weights (precision FM_PRECISION_BF16/INT8). */
size_t fm_reduced_panel_bytes(int precision, int n_in);
size_t fm_packed_bytes_reduced(int precision, int n_in, int n_out);
/* w: row-major n_in x n_out bfloat16 bit patterns, or int8 values. */
void fm_pack_bf16(const unsigned short *w, int n_in, int n_out, void *dst);
void fm_pack_int8(const signed char *w, int n_in, int n_out, void *dst);
/* Packs row-major w (n_in x n_out) into dst (fm_packed_size elements). */
void fm_pack_f32(const float *w, int n_in, int n_out, float *dst);
void fm_pack_f64(const double *w, int n_in, int n_out, double *dst);

/* Kernel variants, best last: FM_KERNEL_generic, FM_KERNEL_avx2, ... (kernels.def). */
#include "kernels.def"
#define FM_KERNEL_ENUM_(name, id, arch, gcc, msvc, features, mr, gemv, narrow, vec) \
    FM_KERNEL_##name = id,
typedef enum { FM_KERNELS(FM_KERNEL_ENUM_) FM_N_KERNELS } fm_kernel_id;
#undef FM_KERNEL_ENUM_

const char *fm_kernel_name(int kernel);
/* Nonzero when this CPU and OS can run the variant. */
int fm_kernel_supported(int kernel);
/* The FM_CPU_* feature bits (cpu.h) the variant needs and this machine lacks (0: none);
 * all ones for a variant not built for this architecture. */
unsigned fm_kernel_missing_features(int kernel);
/* 1 in a test build whose AVX-512, AVX-VNNI and AMX kernels run on emulated instructions
 * (FASTMLP_EMULATE_ISA): correct but slow, never to ship. */
int fm_emulated_isa(void);
/* The variant every call uses; fixed by fm_select_kernel (called once, at import). */
int fm_active_kernel(void);
/* Selects a variant by name ("auto" or NULL: the best supported). Returns 0 on
 * success, -1 for an unknown name, -2 for one this CPU cannot run. */
int fm_select_kernel(const char *name);

/* One dense layer: out[r, :] = f(x[r, :] . W + b) for r < rows.
 * x has row stride ldx, out row stride ldo (elements). apply_activation = 0
 * stores z only. */
void fm_dense_f32(const fm_layer *layer, const float *x, size_t ldx, size_t rows,
                  float *out, size_t ldo, int apply_activation);
void fm_dense_f64(const fm_layer *layer, const double *x, size_t ldx, size_t rows,
                  double *out, size_t ldo, int apply_activation);

/* The activation alone, in place, over rows x cols with row stride ld. */
void fm_activate_f32(fm_activation act, float *z, size_t rows, size_t cols, size_t ld);
void fm_activate_f64(fm_activation act, double *z, size_t rows, size_t cols, size_t ld);

/* The whole network over a C-contiguous batch: x is rows x layers[0].n_in,
 * out is rows x layers[n-1].n_out, on up to `threads` threads of the pool
 * (pool.c; <= 0: fm_default_threads()). Returns 0, or -1 when scratch memory
 * ran out. */
int fm_forward_f32(const fm_layer *layers, int n_layers, const float *x, size_t rows,
                   float *out, int threads);
int fm_forward_f64(const fm_layer *layers, int n_layers, const double *x, size_t rows,
                   double *out, int threads);

/* Threads a call uses by default (threads.c): the CPUs this process may use,
 * or fewer when a limit set at run time (fm_set_thread_limit: threadpoolctl) or
 * else OMP_NUM_THREADS (its first value) says so. */
int fm_default_threads(void);
/* Where that default comes from: one of the FM_THREADS_FROM_* codes. */
enum { FM_THREADS_FROM_CPUS = 0, FM_THREADS_FROM_ENV = 1, FM_THREADS_FROM_LIMIT = 2 };
int fm_default_threads_source(void);
/* Limits the default to n threads for every caller (n <= 0: no limit). */
void fm_set_thread_limit(int n);

#ifdef __cplusplus
}
#endif
#endif
