/* The tiled forward pass over a network's steps (forward.c), for network.c. */
#ifndef FASTMLP_FORWARD_H
#define FASTMLP_FORWARD_H

#include "fastmlp.h"

/* Sets every step's src / dst / saved buffers; returns the number of scratch buffers a
 * tile needs, or -1 for unbalanced residual blocks. The last step writes the output. */
int fm_route_steps(fm_step *steps, int n_steps);

typedef struct {
    size_t stride;        /* elements between rows of a scratch buffer */
    size_t tile;          /* rows per tile */
    size_t n_tiles;
    size_t scratch_bytes; /* per thread */
    size_t pack_elems;    /* of it, for packing a tile's inputs (0: tiles of at most one
                           * micro-tile, which the kernels read in place) */
    int threads;          /* wanted, the caller included */
    int split_columns;    /* the team shares every dense layer by columns, tile after tile */
} fm_tiling;

/* Tiles' scratch follows one core's L2 (fm_cpu_caches): set once, at kernel selection. */
void fm_plan_set_l2(size_t l2_bytes);
size_t fm_plan_tile_bytes(void);

/* The tiling of a call (options NULL: every choice planned). */
fm_tiling fm_plan_tiles(const fm_step *steps, int n_steps, int n_buffers, size_t rows,
                        size_t elem, int threads, const fm_plan_options *options);
/* Whether a call of `rows` rows runs on the caller's thread alone whatever thread count it
 * asks for: then its tiling can be planned once, when the network is built. */
int fm_plan_is_serial(const fm_step *steps, int n_steps, size_t rows, size_t elem,
                      const fm_plan_options *options);
/* Inputs per block of a dense layer's panels: `forced` when positive, else planned for
 * tiles of up to tile_rows rows. */
int fm_plan_k_block(const fm_layer *layer, size_t elem, size_t tile_rows, int forced);
/* Every step's k_block, planned for the tallest tile of these steps (options->k_block
 * forced when positive; options NULL: every choice planned). */
void fm_plan_k_blocks(fm_step *steps, int n_steps, int n_buffers, size_t elem,
                      const fm_plan_options *options);
/* How a dense step runs in tiles of `tile` rows (FM_DENSE_*). */
int fm_dense_method(const fm_layer *layer, size_t elem, size_t tile);

/* Runs routed steps over rows of x into out, in `planned` tiles (NULL: planned for this
 * call); FM_OK or FM_ERR_NO_MEMORY. */
int fm_run_steps_f32(const fm_step *steps, int n_steps, int n_buffers, const float *x,
                     size_t rows, float *out, int threads, const fm_plan_options *options,
                     const fm_tiling *planned);
int fm_run_steps_f64(const fm_step *steps, int n_steps, int n_buffers, const double *x,
                     size_t rows, double *out, int threads, const fm_plan_options *options,
                     const fm_tiling *planned);

#endif
