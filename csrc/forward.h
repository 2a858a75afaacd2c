/* The tiled forward pass over a network's steps (forward.c), for network.c. */
#ifndef FASTMLP_FORWARD_H
#define FASTMLP_FORWARD_H

#include "fastmlp.h"

/* Sets every step's src / dst / saved buffers; returns the number of scratch buffers a
 * tile needs, or -1 for unbalanced residual blocks. The last step writes the output. */
int fm_route_steps(fm_step *steps, int n_steps);

/* Runs routed steps over rows of x into out; FM_OK or FM_ERR_NO_MEMORY. */
int fm_run_steps_f32(const fm_step *steps, int n_steps, int n_buffers, const float *x,
                     size_t rows, float *out, int threads);
int fm_run_steps_f64(const fm_step *steps, int n_steps, int n_buffers, const double *x,
                     size_t rows, double *out, int threads);

#endif
