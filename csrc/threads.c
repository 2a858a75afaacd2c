/* The number of threads a call uses by default (see fastmlp.h): the CPUs this
 * process may use, limited by OMP_NUM_THREADS as the OpenMP standard defines
 * it, or by a limit set at run time (threadpoolctl, through fastmlp's
 * controller). No OpenMP runtime is involved. */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>

#include "fastmlp.h"
#include "pool.h"
#include "portable.h"

/* OMP_NUM_THREADS is a list of positive integers, one per nesting level; the
 * first is the outer level, the only one here. Anything else (empty, zero,
 * negative, not a number, trailing junk) is ignored, as OpenMP runtimes do.
 * Returns the value, or 0 when unset or ignored. */
int fm_parse_omp_num_threads(const char *s) {
    if (s == NULL) return 0;
    while (isspace((unsigned char)*s)) s++;
    if (!isdigit((unsigned char)*s)) return 0;
    long n = 0;
    for (; isdigit((unsigned char)*s); s++) {
        n = n * 10 + (*s - '0');
        if (n > INT_MAX) n = INT_MAX; /* far beyond any CPU count; keeps going safely */
    }
    while (isspace((unsigned char)*s)) s++;
    if (*s != '\0' && *s != ',') return 0;
    return n > 0 ? (int)n : 0;
}

/* 0: not read yet, -1: unset or ignored, else the value. Read once, like an
 * OpenMP runtime reads it at start-up; racing first readers store the same. */
static fm_atomic_int env_limit;
/* The run-time limit, 0 when none. */
static fm_atomic_int set_limit;

static int omp_env_limit(void) {
    int v = fm_atomic_load(&env_limit);
    if (v == 0) {
        v = fm_parse_omp_num_threads(getenv("OMP_NUM_THREADS"));
        if (v == 0) v = -1;
        fm_atomic_store(&env_limit, v);
    }
    return v > 0 ? v : 0;
}

static int at_most_cpus(int n) {
    const int cpus = fm_cpu_count();
    return n > 0 && n < cpus ? n : cpus;
}

int fm_default_threads(void) {
    const int limit = fm_atomic_load(&set_limit);
    return at_most_cpus(limit > 0 ? limit : omp_env_limit());
}

int fm_default_threads_source(void) {
    if (fm_atomic_load(&set_limit) > 0) return FM_THREADS_FROM_LIMIT;
    return omp_env_limit() > 0 ? FM_THREADS_FROM_ENV : FM_THREADS_FROM_CPUS;
}

void fm_set_thread_limit(int n) {
    /* A limit that changes nothing is no limit: restoring the value read
     * before (as threadpoolctl does on exit) returns to the plain default. */
    if (n > 0 && at_most_cpus(n) == at_most_cpus(omp_env_limit())) n = 0;
    fm_atomic_store(&set_limit, n > 0 ? n : 0);
}
