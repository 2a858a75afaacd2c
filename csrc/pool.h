/* A small thread pool for the forward pass.
 *
 * A job is a set of tasks 0 .. n_tasks-1 run by the caller (slot 0) and the
 * pool's workers (slots 1 ..). Task ranges are first offered to one slot each
 * (slot s owns tasks [s n / width, (s+1) n / width)), which keeps a slot on the
 * same data from call to call, and then to whoever is free: a worker that the
 * OS has not scheduled yet never holds the caller up, the caller simply takes
 * its tasks. One job runs at a time, so calls from many threads never ask for
 * more threads than cores; a call that finds the pool busy runs on its own. */
#ifndef FASTMLP_POOL_H
#define FASTMLP_POOL_H

typedef void (*fm_task_fn)(void *ctx, int task, int slot);

/* Reserves the pool for up to `wanted` slots (the caller included). Returns the
 * number of slots the caller may use, 1 when the pool is busy or there is no
 * worker; pass it to fm_pool_run and fm_pool_release. */
int fm_pool_reserve(int wanted);
/* Runs every task; returns when all are done. width comes from fm_pool_reserve. */
void fm_pool_run(fm_task_fn fn, void *ctx, int n_tasks, int width);
void fm_pool_release(int width);

/* Logical CPUs this process may run on. */
int fm_cpu_count(void);

/* OMP_NUM_THREADS's value as the OpenMP standard reads it: its first item when
 * that is a positive integer, else 0 (threads.c). */
int fm_parse_omp_num_threads(const char *s);

#endif
