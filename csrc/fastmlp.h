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
    const void *vec;
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
/* Inputs per block of the dense kernel: one panel's block (FM_KC x 128 bytes)
 * stays in L1 while the rows of a tile stream past it. */
#define FM_KC 256

typedef struct {
    int n_in, n_out;
    const void *packed_weights; /* n_panels * n_in * NR values, FM_ALIGN aligned */
    const void *bias;           /* n_out values */
    fm_activation activation;
} fm_layer;

/* FM_ALIGN-aligned memory for packed weights (NULL when out of memory or bytes is 0). */
void *fm_aligned_alloc(size_t bytes);
void fm_aligned_free(void *p);

/* Size in elements of the packed weights of an n_in x n_out layer. */
size_t fm_packed_size_f32(int n_in, int n_out);
size_t fm_packed_size_f64(int n_in, int n_out);
/* Packs row-major w (n_in x n_out) into dst (fm_packed_size elements). */
void fm_pack_f32(const float *w, int n_in, int n_out, float *dst);
void fm_pack_f64(const double *w, int n_in, int n_out, double *dst);

/* Kernel variants, best last. */
typedef enum {
    FM_KERNEL_GENERIC = 0,
    FM_KERNEL_AVX2,
    FM_KERNEL_AVX512,
    FM_N_KERNELS
} fm_kernel_id;

const char *fm_kernel_name(int kernel);
/* Nonzero when this CPU and OS can run the variant. */
int fm_kernel_supported(int kernel);
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

/* Threads a call uses by default: the CPUs this process may use, or fewer when
 * OpenMP's setting (OMP_NUM_THREADS, threadpoolctl) says so. */
int fm_default_threads(void);
/* Nonzero when built with OpenMP, which only supplies that setting. */
int fm_have_openmp(void);

#ifdef __cplusplus
}
#endif
#endif
