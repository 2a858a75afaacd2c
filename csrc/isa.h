/* Per-variant naming, for the kernel sources.
 *
 * Each kernel source (dense.c, activations.c) is compiled once per row of
 * kernels.def, with FM_KERNEL_NAME set to the row's name and the row's
 * compiler flags. From the row come FM_ISA (its id, usable in #if and equal to
 * one of the FM_ISA_* names below), FM_VEC_ISA, FM_MR, FM_GEMV_PANELS and FM_NARROW; FM_SYM(name)
 * gives each copy its own symbol. The vector primitives (vec.h) exist only for
 * the AVX paths; the generic path is plain C that the compiler vectorises for
 * its target (SSE2 on x86-64, NEON on arm64). */
#ifndef FASTMLP_ISA_H
#define FASTMLP_ISA_H

#include "kernels.def"

#define FM_CAT_(a, b) a##b
#define FM_CAT(a, b) FM_CAT_(a, b)

#ifndef FM_KERNEL_NAME
#define FM_KERNEL_NAME generic
#endif
#define FM_KERNEL_ROW FM_CAT(FM_KERNEL_ROW_, FM_KERNEL_NAME)

/* The ids of the variants whose instructions vec.h and the kernels spell out. */
#define FM_ISA_GENERIC FM_KERNEL_ROW_generic(FM_KCOL_ID)
#define FM_ISA_AVX2 FM_KERNEL_ROW_avx2(FM_KCOL_ID)
#define FM_ISA_AVX2_VNNI FM_KERNEL_ROW_avx2_vnni(FM_KCOL_ID)
#define FM_ISA_AVX512 FM_KERNEL_ROW_avx512(FM_KCOL_ID)
#define FM_ISA_AVX512_BF16 FM_KERNEL_ROW_avx512_bf16(FM_KCOL_ID)
#define FM_ISA_AMX FM_KERNEL_ROW_amx(FM_KCOL_ID)

#define FM_ISA FM_KERNEL_ROW(FM_KCOL_ID)
/* The variant whose vector code (vec.h) the float kernels use: FM_ISA, or avx512 for the
 * rows that add only reduced-precision instructions (avx2 for avx2_vnni). */
#define FM_VEC_ISA FM_KERNEL_ROW(FM_KCOL_VEC)
#define FM_MR FM_KERNEL_ROW(FM_KCOL_MR)
#define FM_GEMV_PANELS FM_KERNEL_ROW(FM_KCOL_GEMV)
#define FM_NARROW FM_KERNEL_ROW(FM_KCOL_NARROW)
#define FM_SYM(name) FM_CAT(FM_CAT(name, _), FM_KERNEL_NAME)

#if defined(__GNUC__)
#define FM_INLINE static inline __attribute__((always_inline))
#define FM_RESTRICT __restrict__
#elif defined(_MSC_VER)
#define FM_INLINE static __forceinline
#define FM_RESTRICT __restrict
#else
#define FM_INLINE static inline
#define FM_RESTRICT
#endif

/* Asks for the cache line at p to be fetched into L2 (a hint: no effect on any result). */
#if defined(__GNUC__)
#define FM_PREFETCH_L2(p) __builtin_prefetch((p), 0, 2)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
#define FM_PREFETCH_L2(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)
#else
#define FM_PREFETCH_L2(p) ((void)(p))
#endif

#endif
