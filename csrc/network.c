/* The network handle: builds and owns the steps (packed weights and every per-feature
 * array), decides where each step reads and writes inside a tile, and runs the pass. */
#include <stdlib.h>
#include <string.h>

#include "fastmlp.h"
#include "forward.h"

/* int8 layers take at most this many inputs: n * 127 * 127 must fit an int32. */
#define FM_MAX_INT8_INPUTS (2147483647 / (127 * 127))
/* Residual blocks nested deeper than this are refused (each holds a tile buffer). */
#define FM_MAX_RESIDUAL_DEPTH 32

struct fm_network {
    int is_double;
    size_t elem;
    fm_step *steps;
    int n_steps, capacity;
    int width;   /* width of the current value while building */
    int depth;   /* residual blocks open */
    int finished;
    int n_buffers; /* scratch buffers a tile needs */
    int threads;   /* for calls that pass threads <= 0; 0: fm_default_threads() */
    double macs;
    fm_plan_options options;
    /* The tiling of one-row calls, planned when finished: the same on any thread count
     * when one_row_serial (it takes about a sixth of a 3-4-2 network's call, Sapphire
     * Rapids). */
    int one_row_serial;
    fm_tiling one_row;
};

fm_network *fm_network_new(int is_double) {
    fm_network *net = calloc(1, sizeof *net);
    if (!net) return NULL;
    net->is_double = is_double != 0;
    net->elem = is_double ? sizeof(double) : sizeof(float);
    return net;
}

void fm_network_free(fm_network *net) {
    if (!net) return;
    for (int i = 0; i < net->n_steps; i++) {
        fm_step *s = &net->steps[i];
        fm_aligned_free((void *)s->layer.packed_weights);
        fm_aligned_free((void *)s->layer.bias);
        fm_aligned_free((void *)s->layer.activation.vec);
        fm_aligned_free((void *)s->layer.scales);
        fm_aligned_free((void *)s->scale);
        fm_aligned_free((void *)s->shift);
    }
    free(net->steps);
    free(net);
}

/* A copy of n values of the network's dtype (NULL for NULL); *failed set when out of memory. */
static void *copy_values(const fm_network *net, const void *values, int n, int *failed) {
    if (!values) return NULL;
    void *copy = fm_aligned_alloc((size_t)n * net->elem);
    if (!copy) {
        *failed = 1;
        return NULL;
    }
    memcpy(copy, values, (size_t)n * net->elem);
    return copy;
}

/* A new step of `kind` from n_in to n_out features, or NULL (status in *rc). */
static fm_step *append(fm_network *net, int kind, int n_in, int n_out, int *rc) {
    *rc = FM_OK;
    if (net->finished) *rc = FM_ERR_STATE;
    else if (n_in < 1 || n_out < 1 || (net->width && n_in != net->width)) *rc = FM_ERR_ARGUMENT;
    if (*rc != FM_OK) return NULL;
    if (net->n_steps == net->capacity) {
        int capacity = net->capacity ? 2 * net->capacity : 8;
        fm_step *grown = realloc(net->steps, (size_t)capacity * sizeof *grown);
        if (!grown) {
            *rc = FM_ERR_NO_MEMORY;
            return NULL;
        }
        net->steps = grown;
        net->capacity = capacity;
    }
    fm_step *s = &net->steps[net->n_steps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->layer.n_in = n_in;
    s->layer.n_out = n_out;
    s->layer.activation.kind = FM_IDENTITY;
    net->width = n_out;
    return s;
}

static int valid_activation(fm_activation act) {
    return act.kind >= 0 && act.kind < FM_N_ACTIVATIONS;
}

int fm_network_dense(fm_network *net, int n_in, int n_out, const void *w, const void *bias,
                     fm_activation act) {
    if (!w || !valid_activation(act)) return FM_ERR_ARGUMENT;
    int rc;
    fm_step *s = append(net, FM_STEP_DENSE, n_in, n_out, &rc);
    if (!s) return rc;
    int failed = 0;
    size_t n_packed = net->is_double ? fm_packed_size_f64(n_in, n_out)
                                     : fm_packed_size_f32(n_in, n_out);
    void *packed = fm_aligned_alloc(n_packed * net->elem);
    void *b = fm_aligned_alloc((size_t)n_out * net->elem);
    s->layer.packed_weights = packed;
    s->layer.bias = b;
    s->layer.activation = act;
    s->layer.activation.vec = copy_values(net, act.vec, n_out, &failed);
    if (!packed || !b || failed) return FM_ERR_NO_MEMORY; /* freed with the network */
    if (net->is_double) fm_pack_f64(w, n_in, n_out, packed);
    else fm_pack_f32(w, n_in, n_out, packed);
    if (bias) memcpy(b, bias, (size_t)n_out * net->elem);
    else memset(b, 0, (size_t)n_out * net->elem);
    net->macs += (double)n_in * n_out;
    return FM_OK;
}

int fm_network_dense_reduced(fm_network *net, int precision, int n_in, int n_out,
                             const void *w, const float *scales, const float *bias,
                             fm_activation act) {
    const int int8 = precision == FM_PRECISION_INT8;
    if (!w || !valid_activation(act) || net->is_double || (int8 && !scales) ||
        (precision != FM_PRECISION_BF16 && !int8))
        return FM_ERR_ARGUMENT;
    /* int8: an int32 sum of n_in products of at most 127 * 127 must not overflow. */
    if (int8 && n_in > FM_MAX_INT8_INPUTS) return FM_ERR_ARGUMENT;
    int rc;
    fm_step *s = append(net, FM_STEP_DENSE, n_in, n_out, &rc);
    if (!s) return rc;
    int failed = 0;
    void *packed = fm_aligned_alloc(fm_packed_bytes_reduced(precision, n_in, n_out));
    float *b = fm_aligned_alloc((size_t)n_out * sizeof(float));
    s->layer.packed_weights = packed;
    s->layer.bias = b;
    s->layer.precision = precision;
    s->layer.scales = int8 ? copy_values(net, scales, n_out, &failed) : NULL;
    s->layer.activation = act;
    s->layer.activation.vec = copy_values(net, act.vec, n_out, &failed);
    if (!packed || !b || failed) return FM_ERR_NO_MEMORY; /* freed with the network */
    if (int8) fm_pack_int8(w, n_in, n_out, packed);
    else fm_pack_bf16(w, n_in, n_out, packed);
    if (bias) memcpy(b, bias, (size_t)n_out * sizeof(float));
    else memset(b, 0, (size_t)n_out * sizeof(float));
    net->macs += (double)n_in * n_out;
    return FM_OK;
}

static int elementwise(fm_network *net, int kind, int width, const void *scale,
                       const void *shift, double eps) {
    int rc;
    fm_step *s = append(net, kind, width, width, &rc);
    if (!s) return rc;
    int failed = 0;
    s->scale = copy_values(net, scale, width, &failed);
    s->shift = copy_values(net, shift, width, &failed);
    s->eps = eps;
    return failed ? FM_ERR_NO_MEMORY : FM_OK;
}

int fm_network_affine(fm_network *net, int width, const void *scale, const void *shift) {
    return elementwise(net, FM_STEP_AFFINE, width, scale, shift, 0);
}

int fm_network_layernorm(fm_network *net, int width, const void *scale, const void *shift,
                         double eps) {
    if (!(eps >= 0)) return FM_ERR_ARGUMENT;
    return elementwise(net, FM_STEP_LAYERNORM, width, scale, shift, eps);
}

int fm_network_activation(fm_network *net, int width, fm_activation act) {
    if (!valid_activation(act)) return FM_ERR_ARGUMENT;
    int rc = elementwise(net, FM_STEP_ACTIVATION, width, NULL, NULL, 0);
    if (rc != FM_OK) return rc;
    fm_step *s = &net->steps[net->n_steps - 1];
    int failed = 0;
    s->layer.activation = act;
    s->layer.activation.vec = copy_values(net, act.vec, width, &failed);
    return failed ? FM_ERR_NO_MEMORY : FM_OK;
}

int fm_network_residual_begin(fm_network *net, int width) {
    if (net->depth >= FM_MAX_RESIDUAL_DEPTH) return FM_ERR_ARGUMENT;
    int rc;
    if (!append(net, FM_STEP_RESIDUAL_BEGIN, width, width, &rc)) return rc;
    net->depth++;
    return FM_OK;
}

int fm_network_residual_end(fm_network *net) {
    if (net->depth == 0 || net->finished) return net->finished ? FM_ERR_STATE : FM_ERR_ARGUMENT;
    /* The block's output must have the width of the value it is added to. */
    int width = 0, depth = 0;
    for (int i = net->n_steps - 1; i >= 0; i--) {
        const fm_step *s = &net->steps[i];
        if (s->kind == FM_STEP_RESIDUAL_END) depth++;
        else if (s->kind == FM_STEP_RESIDUAL_BEGIN && depth-- == 0) {
            width = s->layer.n_in;
            if (i == net->n_steps - 1) return FM_ERR_ARGUMENT; /* an empty block */
            break;
        }
    }
    if (width != net->width) return FM_ERR_ARGUMENT;
    int rc;
    if (!append(net, FM_STEP_RESIDUAL_END, width, width, &rc)) return rc;
    net->depth--;
    return FM_OK;
}

/* Scratch buffer b holds the value a residual block will add back. */
static int pinned(const int *saved, int depth, int b) {
    for (int d = 0; d < depth; d++)
        if (saved[d] == b) return 1;
    return 0;
}

/* The lowest scratch buffer that holds nothing still needed. */
static int free_buffer(const int *saved, int depth, int current, int *n_buffers) {
    int b = 0;
    while (b == current || pinned(saved, depth, b)) b++;
    if (b + 1 > *n_buffers) *n_buffers = b + 1;
    return b;
}

int fm_route_steps(fm_step *steps, int n_steps) {
    int saved[FM_MAX_RESIDUAL_DEPTH], depth = 0, n_buffers = 0;
    int current = FM_BUF_INPUT;
    for (int i = 0; i < n_steps; i++) {
        fm_step *s = &steps[i];
        const int last = i + 1 == n_steps;
        s->src = current;
        s->saved = FM_BUF_INPUT;
        if (s->kind == FM_STEP_RESIDUAL_BEGIN) {
            if (depth == FM_MAX_RESIDUAL_DEPTH) return -1;
            saved[depth++] = current;
            s->dst = last ? FM_BUF_OUTPUT : current;
        } else if (s->kind == FM_STEP_DENSE) {
            /* A dense layer cannot run in place: it reads every input for each output. */
            s->dst = last ? FM_BUF_OUTPUT : free_buffer(saved, depth, current, &n_buffers);
        } else {
            if (s->kind == FM_STEP_RESIDUAL_END) {
                if (depth == 0) return -1;
                s->saved = saved[--depth];
            }
            /* Row-wise steps run in place, unless their input must survive them. */
            const int in_place = current >= 0 && !pinned(saved, depth, current);
            s->dst = last       ? FM_BUF_OUTPUT
                     : in_place ? current
                                : free_buffer(saved, depth, current, &n_buffers);
        }
        current = s->dst;
    }
    return n_buffers;
}

int fm_network_set_plan_options(fm_network *net, const fm_plan_options *options) {
    if (!net || !options) return FM_ERR_ARGUMENT;
    if (net->finished) return FM_ERR_STATE;
    if (options->tile_rows < 0 || options->split < FM_SPLIT_AUTO ||
        options->split > FM_SPLIT_COLUMNS || options->dense_method < FM_DENSE_AUTO ||
        options->dense_method > FM_DENSE_NARROW || options->k_block < 0)
        return FM_ERR_ARGUMENT;
    net->options = *options;
    return FM_OK;
}

int fm_network_finish(fm_network *net) {
    if (net->finished) return FM_ERR_STATE;
    if (net->n_steps == 0 || net->depth != 0) return FM_ERR_ARGUMENT;
    int n_buffers = fm_route_steps(net->steps, net->n_steps);
    if (n_buffers < 0) return FM_ERR_ARGUMENT;
    for (int i = 0; i < net->n_steps; i++) net->steps[i].layer.method = net->options.dense_method;
    fm_plan_k_blocks(net->steps, net->n_steps, n_buffers, net->elem, &net->options);
    net->n_buffers = n_buffers;
    net->one_row_serial =
        fm_plan_is_serial(net->steps, net->n_steps, 1, net->elem, &net->options);
    net->one_row = fm_plan_tiles(net->steps, net->n_steps, n_buffers, 1, net->elem, 1,
                                 &net->options);
    net->finished = 1;
    return FM_OK;
}

int fm_network_n_inputs(const fm_network *net) {
    return net->n_steps ? net->steps[0].layer.n_in : 0;
}

int fm_network_n_outputs(const fm_network *net) {
    return net->n_steps ? net->steps[net->n_steps - 1].layer.n_out : 0;
}

int fm_network_is_double(const fm_network *net) { return net->is_double; }

void fm_network_set_threads(fm_network *net, int threads) {
    net->threads = threads > 0 ? threads : 0;
}

int fm_network_threads(const fm_network *net) { return net->threads; }

double fm_network_macs_per_row(const fm_network *net) { return net->macs; }

int fm_network_n_steps(const fm_network *net) { return net->n_steps; }

int fm_network_step_width(const fm_network *net, int step) {
    if (step < 0 || step >= net->n_steps) return FM_ERR_ARGUMENT;
    return net->steps[step].layer.n_out;
}

static const fm_tiling *one_row_plan(const fm_network *net, size_t rows) {
    return rows == 1 && net->one_row_serial ? &net->one_row : NULL;
}

int fm_network_forward_f32(const fm_network *net, const float *x, size_t rows, float *out,
                           int threads) {
    if (!net) return FM_ERR_ARGUMENT;
    if (!net->finished) return FM_ERR_STATE;
    if (net->is_double) return FM_ERR_DTYPE;
    if (!x || !out) return rows ? FM_ERR_ARGUMENT : FM_OK;
    return fm_run_steps_f32(net->steps, net->n_steps, net->n_buffers, x, rows, out,
                            threads > 0 ? threads : net->threads, &net->options,
                            one_row_plan(net, rows));
}

int fm_network_forward_f64(const fm_network *net, const double *x, size_t rows, double *out,
                           int threads) {
    if (!net) return FM_ERR_ARGUMENT;
    if (!net->finished) return FM_ERR_STATE;
    if (!net->is_double) return FM_ERR_DTYPE;
    if (!x || !out) return rows ? FM_ERR_ARGUMENT : FM_OK;
    return fm_run_steps_f64(net->steps, net->n_steps, net->n_buffers, x, rows, out,
                            threads > 0 ? threads : net->threads, &net->options,
                            one_row_plan(net, rows));
}

/* The steps up to `step`, re-routed so that this one writes the caller's output. */
static fm_step *trace_steps(const fm_network *net, int step, int pre_activation, int *n_buffers) {
    fm_step *copy = malloc((size_t)(step + 1) * sizeof *copy);
    if (!copy) return NULL;
    memcpy(copy, net->steps, (size_t)(step + 1) * sizeof *copy);
    if (pre_activation && copy[step].kind == FM_STEP_DENSE) {
        copy[step].layer.activation.kind = FM_IDENTITY;
        copy[step].layer.activation.vec = NULL;
    }
    *n_buffers = fm_route_steps(copy, step + 1);
    return copy;
}

#define FM_DEFINE_TRACE(SFX, REAL, DOUBLE)                                                     \
    int fm_network_trace_##SFX(const fm_network *net, int step, int pre_activation,             \
                               const REAL *x, size_t rows, REAL *out) {                         \
        if (!net || !net->finished) return FM_ERR_STATE;                                        \
        if (net->is_double != (DOUBLE)) return FM_ERR_DTYPE;                                    \
        if (step < 0 || step >= net->n_steps) return FM_ERR_ARGUMENT;                           \
        int n_buffers;                                                                          \
        fm_step *steps = trace_steps(net, step, pre_activation, &n_buffers);                    \
        if (!steps) return FM_ERR_NO_MEMORY;                                                    \
        int rc = fm_run_steps_##SFX(steps, step + 1, n_buffers, x, rows, out, 1, &net->options, \
                                          NULL);                                              \
        free(steps);                                                                            \
        return rc;                                                                              \
    }

FM_DEFINE_TRACE(f32, float, 0)
FM_DEFINE_TRACE(f64, double, 1)

static fm_tiling tiling_of(const fm_network *net, size_t rows, int threads) {
    return fm_plan_tiles(net->steps, net->n_steps, net->n_buffers, rows, net->elem,
                         threads > 0 ? threads : net->threads, &net->options);
}

int fm_network_plan(const fm_network *net, size_t rows, int threads, fm_plan *plan) {
    if (!net || !net->finished) return FM_ERR_STATE;
    if (rows < 1 || !plan) return FM_ERR_ARGUMENT;
    const fm_tiling t = tiling_of(net, rows, threads);
    plan->threads = t.threads;
    plan->split_columns = t.split_columns && t.threads > 1;
    plan->tile_rows = t.tile;
    plan->n_tiles = t.n_tiles;
    /* One slot's scratch when the team shares each tile, else one per thread; small
     * single-threaded calls keep theirs on the stack. */
    plan->scratch_bytes = t.scratch_bytes * (plan->split_columns ? 1 : (size_t)t.threads);
    plan->tile_bytes = fm_plan_tile_bytes();
    return FM_OK;
}

int fm_network_step_k_block(const fm_network *net, int step) {
    if (!net || !net->finished) return FM_ERR_STATE;
    if (step < 0 || step >= net->n_steps || net->steps[step].kind != FM_STEP_DENSE)
        return FM_ERR_ARGUMENT;
    return net->steps[step].layer.k_block;
}

int fm_network_step_method(const fm_network *net, size_t rows, int threads, int step) {
    if (!net || !net->finished) return FM_ERR_STATE;
    if (rows < 1 || step < 0 || step >= net->n_steps || net->steps[step].kind != FM_STEP_DENSE)
        return FM_ERR_ARGUMENT;
    return fm_dense_method(&net->steps[step].layer, net->elem, tiling_of(net, rows, threads).tile);
}
