/* The thread pool (see pool.h): workers spin briefly after a job and then
 * sleep on a condition variable. POSIX threads, or Windows threads with
 * SRWLOCK / CONDITION_VARIABLE; the pool's logic is the same on both. */
#define _GNU_SOURCE /* sched_getaffinity; POSIX threads under -std=c11 */
#include "pool.h"

#include <stdint.h>

#include "portable.h"

#define FM_MAX_SLOTS 64
/* How long a worker polls for the next job before it sleeps: calls in a loop
 * find it awake (waking a sleeping thread took ~50 us on the VMs measured),
 * yet an idle pool stops using the cores almost at once. */
#define FM_SPIN_NS 500000LL
#define FM_WORKER_STACK (256 * 1024)

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#include <immintrin.h>
#define FM_PAUSE() _mm_pause()
#elif defined(__aarch64__) && defined(__GNUC__)
#define FM_PAUSE() __asm__ __volatile__("yield")
#elif defined(_M_ARM64)
#include <intrin.h>
#define FM_PAUSE() __yield()
#else
#define FM_PAUSE() ((void)0)
#endif

/* -- the platform: a mutex, a condition variable, a clock, a thread ------------------ */
#if defined(_WIN32)
#include <windows.h>

typedef SRWLOCK fm_mutex;
typedef CONDITION_VARIABLE fm_cond;
#define FM_MUTEX_INIT SRWLOCK_INIT
#define FM_COND_INIT CONDITION_VARIABLE_INIT
static void mutex_lock(fm_mutex *m) { AcquireSRWLockExclusive(m); }
static void mutex_unlock(fm_mutex *m) { ReleaseSRWLockExclusive(m); }
static void cond_wait(fm_cond *c, fm_mutex *m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
static void cond_broadcast(fm_cond *c) { WakeAllConditionVariable(c); }

static long long now_ns(void) {
    static LARGE_INTEGER freq; /* constant; racing first readers store the same */
    LARGE_INTEGER t;
    if (freq.QuadPart == 0) QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    return (long long)((double)t.QuadPart * 1e9 / (double)freq.QuadPart);
}

int fm_cpu_count(void) {
    DWORD_PTR process, system;
    if (GetProcessAffinityMask(GetCurrentProcess(), &process, &system) && process) {
        int n = 0;
        for (; process; process &= process - 1) n++;
        return n;
    }
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    return info.dwNumberOfProcessors > 0 ? (int)info.dwNumberOfProcessors : 1;
}

static void worker_main(int slot);
static DWORD WINAPI thread_entry(LPVOID arg) {
    worker_main((int)(intptr_t)arg);
    return 0;
}
static int start_thread(int slot) {
    HANDLE h = CreateThread(NULL, FM_WORKER_STACK, thread_entry, (LPVOID)(intptr_t)slot,
                            STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (h == NULL) return -1;
    CloseHandle(h); /* detached: the worker lives as long as the process */
    return 0;
}
static void on_fork_in_child(void (*reset)(void)) { (void)reset; } /* no fork() */
static void init_sync(fm_mutex *m, fm_cond *c) {
    InitializeSRWLock(m);
    InitializeConditionVariable(c);
}

#else
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

typedef pthread_mutex_t fm_mutex;
typedef pthread_cond_t fm_cond;
#define FM_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#define FM_COND_INIT PTHREAD_COND_INITIALIZER
static void mutex_lock(fm_mutex *m) { pthread_mutex_lock(m); }
static void mutex_unlock(fm_mutex *m) { pthread_mutex_unlock(m); }
static void cond_wait(fm_cond *c, fm_mutex *m) { pthread_cond_wait(c, m); }
static void cond_broadcast(fm_cond *c) { pthread_cond_broadcast(c); }

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int fm_cpu_count(void) {
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void worker_main(int slot);
static void *thread_entry(void *arg) {
    worker_main((int)(intptr_t)arg);
    return NULL;
}
static int start_thread(int slot) {
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, FM_WORKER_STACK);
    const int rc = pthread_create(&thread, &attr, thread_entry, (void *)(intptr_t)slot);
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}
static void on_fork_in_child(void (*reset)(void)) { pthread_atfork(NULL, NULL, reset); }
static void init_sync(fm_mutex *m, fm_cond *c) {
    pthread_mutex_init(m, NULL);
    pthread_cond_init(c, NULL);
}
#endif

/* -- the pool ----------------------------------------------------------------------- */
static struct {
    fm_mutex lock;
    fm_cond wake;
    int started;   /* start_workers ran (in this process) */
    int n_workers; /* started; slots 1 .. n_workers */
    fm_atomic_int busy;
    fm_atomic_int generation; /* wraps around; only compared for equality */
    fm_atomic_int open;
    fm_atomic_int active;   /* workers inside the current job */
    fm_atomic_int sleepers; /* workers waiting on `wake` */
    /* The current job; written by its caller before `open` and `generation`. */
    fm_task_fn fn;
    void *ctx;
    int n_tasks, width;
    fm_atomic_int next[FM_MAX_SLOTS];
    int end[FM_MAX_SLOTS];
    fm_atomic_int done;
} pool = {FM_MUTEX_INIT, FM_COND_INIT};

/* Claims tasks, own range first, then the others'; runs them. */
static void take_tasks(int slot) {
    const int width = pool.width;
    for (int k = 0; k < width; k++) {
        const int s = (slot + k) % width;
        for (;;) {
            const int task = fm_atomic_fetch_add(&pool.next[s], 1);
            if (task >= pool.end[s]) break;
            pool.fn(pool.ctx, task, slot);
            fm_atomic_fetch_add(&pool.done, 1);
        }
    }
}

static void worker_main(int slot) {
    int seen = fm_atomic_load(&pool.generation);
    for (;;) {
        int now = fm_atomic_load(&pool.generation);
        if (now == seen) {
            const long long start = now_ns();
            for (int i = 1; now == seen; i++) {
                FM_PAUSE();
                now = fm_atomic_load(&pool.generation);
                if (i % 64 == 0 && now_ns() - start > FM_SPIN_NS) break;
            }
        }
        if (now == seen) {
            mutex_lock(&pool.lock);
            fm_atomic_fetch_add(&pool.sleepers, 1);
            while ((now = fm_atomic_load(&pool.generation)) == seen) cond_wait(&pool.wake, &pool.lock);
            fm_atomic_fetch_add(&pool.sleepers, -1);
            mutex_unlock(&pool.lock);
        }
        seen = now;
        /* Join only a job that is still open; its caller waits for `active`
         * to drop before it reuses the job's fields. */
        fm_atomic_fetch_add(&pool.active, 1);
        if (fm_atomic_load(&pool.open) && slot < pool.width) take_tasks(slot);
        fm_atomic_fetch_add(&pool.active, -1);
    }
}

static void reset_after_fork(void) {
    /* The child has none of the parent's workers: start again, lazily. */
    init_sync(&pool.lock, &pool.wake);
    pool.started = 0;
    pool.n_workers = 0;
    fm_atomic_store(&pool.busy, 0);
    fm_atomic_store(&pool.active, 0);
    fm_atomic_store(&pool.open, 0);
    fm_atomic_store(&pool.sleepers, 0);
}

static void start_workers(void) {
    static int fork_handler_registered;
    pool.started = 1;
    if (!fork_handler_registered) {
        on_fork_in_child(reset_after_fork);
        fork_handler_registered = 1;
    }
    int wanted = fm_cpu_count() - 1;
    if (wanted > FM_MAX_SLOTS - 1) wanted = FM_MAX_SLOTS - 1;
    for (int w = 1; w <= wanted; w++) {
        if (start_thread(w) != 0) break;
        pool.n_workers = w;
    }
}

int fm_pool_reserve(int wanted) {
    if (wanted <= 1) return 1;
    if (!fm_atomic_cas(&pool.busy, 0, 1)) return 1;
    if (!pool.started) start_workers(); /* only the pool's holder gets here */
    const int width = 1 + pool.n_workers < wanted ? 1 + pool.n_workers : wanted;
    if (width <= 1) fm_atomic_store(&pool.busy, 0);
    return width;
}

void fm_pool_release(int width) {
    if (width > 1) fm_atomic_store(&pool.busy, 0);
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
        fm_atomic_store(&pool.next[s], (int)((long long)n_tasks * s / width));
        pool.end[s] = (int)((long long)n_tasks * (s + 1) / width);
    }
    fm_atomic_store(&pool.done, 0);
    fm_atomic_store(&pool.open, 1);
    fm_atomic_fetch_add(&pool.generation, 1);
    /* A worker counts itself a sleeper before it last reads `generation`, so
     * reading none here means every worker will see this job. */
    if (fm_atomic_load(&pool.sleepers) > 0) {
        mutex_lock(&pool.lock);
        cond_broadcast(&pool.wake);
        mutex_unlock(&pool.lock);
    }

    take_tasks(0);
    while (fm_atomic_load(&pool.done) < n_tasks) FM_PAUSE();
    fm_atomic_store(&pool.open, 0);
    while (fm_atomic_load(&pool.active) > 0) FM_PAUSE();
}
