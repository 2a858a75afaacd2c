/* Per-instruction-set naming and vector primitives.
 *
 * Each kernel source (dense.c, activations.c) is compiled once per instruction
 * set by the build, with FM_ISA set to one of FM_ISA_GENERIC, FM_ISA_AVX2 or
 * FM_ISA_AVX512 and the matching compiler flags. FM_SYM(name) gives each copy
 * its own symbol. The vector primitives (FM_V*) exist only for the AVX paths;
 * the generic path is plain C that the compiler vectorises for its target
 * (SSE2 on x86-64, NEON on arm64). */
#ifndef FASTMLP_ISA_H
#define FASTMLP_ISA_H

#define FM_ISA_GENERIC 0
#define FM_ISA_AVX2 1
#define FM_ISA_AVX512 2

#ifndef FM_ISA
#define FM_ISA FM_ISA_GENERIC
#endif

#define FM_CAT_(a, b) a##b
#define FM_CAT(a, b) FM_CAT_(a, b)

#if FM_ISA == FM_ISA_AVX512
#define FM_SYM(name) FM_CAT(name, _avx512)
#elif FM_ISA == FM_ISA_AVX2
#define FM_SYM(name) FM_CAT(name, _avx2)
#else
#define FM_SYM(name) FM_CAT(name, _generic)
#endif

#if defined(__GNUC__)
#define FM_INLINE static inline __attribute__((always_inline))
#define FM_RESTRICT __restrict__
#else
#define FM_INLINE static inline
#define FM_RESTRICT
#endif

#endif
