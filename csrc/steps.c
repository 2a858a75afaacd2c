/* The row-wise steps other than dense layers: per-feature affine maps, layer
 * normalisation, residual additions and row copies, float and double. Each row is
 * computed from its own values alone, in a fixed order. */
#include "steps.h"

#include "isa.h"

#include <math.h>
#include <string.h>

#define REAL float
#define SFX f32
#include "steps_impl.h"
#undef REAL
#undef SFX

#define REAL double
#define SFX f64
#include "steps_impl.h"
