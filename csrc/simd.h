/* The x86 vector intrinsics for the kernel sources: the compiler's, or, in a test build
 * configured with FASTMLP_EMULATE_ISA (CMakeLists.txt), portable emulations of the
 * AVX-512, AVX-VNNI and AMX ones, so that those kernels' logic is tested on a CPU without them. */
#ifndef FASTMLP_SIMD_H
#define FASTMLP_SIMD_H

#if defined(FM_EMULATE_ISA)
#include "isa_emulation.h"
#else
#include <immintrin.h>
#endif

#endif
