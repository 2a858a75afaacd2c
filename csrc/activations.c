/* Activation functions, float and double; compiled once per instruction set. */
#include <math.h>

#include "fastmlp.h"
#include "isa.h"

#define REAL float
#define SFX f32
#define M_EXP expf
#define M_EXPM1 expm1f
#define M_LOG1P log1pf
#define M_ERFC erfcf
#define M_TANH tanhf
#include "activations_impl.h"
#undef REAL
#undef SFX
#undef M_EXP
#undef M_EXPM1
#undef M_LOG1P
#undef M_ERFC
#undef M_TANH

#define REAL double
#define SFX f64
#define M_EXP exp
#define M_EXPM1 expm1
#define M_LOG1P log1p
#define M_ERFC erfc
#define M_TANH tanh
#include "activations_impl.h"
