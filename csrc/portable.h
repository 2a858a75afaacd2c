/* What GCC, clang and MSVC spell differently: atomics.
 *
 * Atomics: C11 <stdatomic.h> where the compiler has it, else (MSVC before
 * its C11 atomics) the Windows Interlocked functions, which are full barriers
 * like the sequentially consistent C11 operations used here. Only int-sized
 * counters are needed. */
#ifndef FASTMLP_PORTABLE_H
#define FASTMLP_PORTABLE_H

#if (defined(_MSC_VER) && !defined(__clang__)) || defined(FM_USE_INTERLOCKED)
#include <windows.h>
typedef volatile long fm_atomic_int;
#define fm_atomic_load(p) InterlockedCompareExchange((p), 0, 0)
#define fm_atomic_store(p, v) ((void)InterlockedExchange((p), (v)))
#define fm_atomic_fetch_add(p, v) InterlockedExchangeAdd((p), (v))
/* Sets *p to desired if it equals expected; nonzero on success. */
#define fm_atomic_cas(p, expected, desired) \
    (InterlockedCompareExchange((p), (desired), (expected)) == (expected))
#else
#include <stdatomic.h>
typedef atomic_int fm_atomic_int;
#define fm_atomic_load(p) atomic_load(p)
#define fm_atomic_store(p, v) atomic_store((p), (v))
#define fm_atomic_fetch_add(p, v) atomic_fetch_add((p), (v))
static inline int fm_atomic_cas_int(atomic_int *p, int expected, int desired) {
    return atomic_compare_exchange_strong(p, &expected, desired);
}
#define fm_atomic_cas(p, expected, desired) fm_atomic_cas_int((p), (expected), (desired))
#endif

#endif
