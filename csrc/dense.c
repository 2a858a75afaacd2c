/* The dense-layer kernel, float and double; compiled once per instruction set. */
#include <limits.h>

#include "fastmlp.h"
#include "isa.h"
#include "kernel_table.h"

#define FM_REAL_IS_DOUBLE 0
#include "vec.h"
#define REAL float
#define SFX f32
#include "dense_impl.h"
#undef REAL
#undef SFX
#undef FM_REAL_IS_DOUBLE

#define FM_REAL_IS_DOUBLE 1
#include "vec.h"
#define REAL double
#define SFX f64
#include "dense_impl.h"
