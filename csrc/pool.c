/* The thread pool (see pool.h): POSIX threads, workers spin briefly after a job
 * and then sleep on a condition variable. */
#define _GNU_SOURCE /* sched_getaffinity; POSIX threads under -std=c11 */
#include "pool.h"

#include <stdatomic.h>

#if defined(_WIN32)
/* No pool on this platform yet: every job runs on its caller. */
int fm_cpu_count(void) { return 1; }
int fm_pool_reserve(int wanted) { (void)wanted; return 1; }
void fm_pool_release(int width) { (void)width; }
void fm_pool_run(fm_task_fn fn, void *ctx, int n_tasks, int width) {
    (void)width;
    for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
}
#else

#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#define FM_MAX_SLOTS 64
/* How long a worker polls for the next job before it sleeps: calls in a loop
 * find it awake (waking a sleeping thread took ~50 us on the VMs measured),
 * yet an idle pool stops using the cores almost at once. */
#define FM_SPIN_NS 500000L

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FM_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define FM_PAUSE() __asm__ __volatile__("yield")
#else
#define FM_PAUSE() ((void)0)
#endif

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int started;   /* start_workers ran (in this process) */
    int n_workers; /* started; slots 1 .. n_workers */
    atomic_int busy;
    atomic_uint generation;
    atomic_int open;
    atomic_int active;   /* workers inside the current job */
    atomic_int sleepers; /* workers waiting on `wake` */
    /* The current job; written by its caller before `open` and `generation`. */
    fm_task_fn fn;
    void *ctx;
    int n_tasks, width;
    atomic_int next[FM_MAX_SLOTS];
    int end[FM_MAX_SLOTS];
    atomic_int done;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};


int fm_cpu_count(void) {
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Claims tasks, own range first, then the others'; runs them. */
static void take_tasks(int slot) {
    const int width = pool.width;
    for (int k = 0; k < width; k++) {
        const int s = (slot + k) % width;
        for (;;) {
            const int task = atomic_fetch_add(&pool.next[s], 1);
            if (task >= pool.end[s]) break;
            pool.fn(pool.ctx, task, slot);
            atomic_fetch_add(&pool.done, 1);
        }
    }
}

static void *worker_main(void *arg) {
    const int slot = (int)(long)arg;
    unsigned seen = atomic_load(&pool.generation);
    for (;;) {
        unsigned now = atomic_load(&pool.generation);
        if (now == seen) {
            const long start = now_ns();
            for (int i = 1; now == seen; i++) {
                FM_PAUSE();
                now = atomic_load(&pool.generation);
                if (i % 64 == 0 && now_ns() - start > FM_SPIN_NS) break;
            }
        }
        if (now == seen) {
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while ((now = atomic_load(&pool.generation)) == seen)
                pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = now;
        /* Join only a job that is still open; its caller waits for `active`
         * to drop before it reuses the job's fields. */
        atomic_fetch_add(&pool.active, 1);
        if (atomic_load(&pool.open) && slot < pool.width) take_tasks(slot);
        atomic_fetch_sub(&pool.active, 1);
    }
    return NULL;
}

static void reset_after_fork(void) {
    /* The child has none of the parent's workers: start again, lazily. */
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pool.started = 0;
    pool.n_workers = 0;
    atomic_store(&pool.busy, 0);
    atomic_store(&pool.active, 0);
    atomic_store(&pool.open, 0);
    atomic_store(&pool.sleepers, 0);
}

static void start_workers(void) {
    static int atfork_registered;
    pool.started = 1;
    if (!atfork_registered) {
        pthread_atfork(NULL, NULL, reset_after_fork);
        atfork_registered = 1;
    }
    int wanted = fm_cpu_count() - 1;
    if (wanted > FM_MAX_SLOTS - 1) wanted = FM_MAX_SLOTS - 1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int w = 1; w <= wanted; w++) {
        pthread_t thread;
        if (pthread_create(&thread, &attr, worker_main, (void *)(long)w) != 0) break;
        pool.n_workers = w;
    }
    pthread_attr_destroy(&attr);
}

int fm_pool_reserve(int wanted) {
    if (wanted <= 1) return 1;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&pool.busy, &expected, 1)) return 1;
    if (!pool.started) start_workers(); /* only the pool's holder gets here */
    const int width = 1 + pool.n_workers < wanted ? 1 + pool.n_workers : wanted;
    if (width <= 1) atomic_store(&pool.busy, 0);
    return width;
}

void fm_pool_release(int width) {
    if (width > 1) atomic_store(&pool.busy, 0);
}

void fm_pool_run(fm_task_fn fn, void *ctx, int n_tasks, int width) {
    if (width <= 1 || n_tasks <= 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n_tasks = n_tasks;
    pool.width = width;
    for (int s = 0; s < width; s++) {
        atomic_store(&pool.next[s], (int)((long)n_tasks * s / width));
        pool.end[s] = (int)((long)n_tasks * (s + 1) / width);
    }
    atomic_store(&pool.done, 0);
    atomic_store(&pool.open, 1);
    atomic_fetch_add(&pool.generation, 1);
    /* A worker counts itself a sleeper before it last reads `generation`, so
     * reading none here means every worker will see this job. */
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }

    take_tasks(0);
    while (atomic_load(&pool.done) < n_tasks) FM_PAUSE();
    atomic_store(&pool.open, 0);
    while (atomic_load(&pool.active) > 0) FM_PAUSE();
}
#endif
