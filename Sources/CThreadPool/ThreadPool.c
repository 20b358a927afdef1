// The pool of ThreadPool.h. One job at a time (`busy`); a job is published by writing its fields, then bumping
// `generation` (release); each pool thread that sees a new generation runs its share if it has one and decrements
// `pending` (release); the caller runs share 0 and spins until `pending` is 0 (acquire). Sleeping threads wait on a
// condition variable; the caller signals it only when `sleeping` says someone may be waiting (sequentially
// consistent with the generation bump, so no wake-up is lost: a thread about to sleep re-checks the generation under
// the lock after counting itself as sleeping).
#define _GNU_SOURCE
#include "ThreadPool.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DREAM_PAUSE() _mm_pause()
#else
#define DREAM_PAUSE() ((void)0)
#endif

/// Pool threads at most (shares 1 … 63).
#define POOL_MAX_THREADS 63
/// How long an idle thread spins for the next job before sleeping.
#define POOL_SPIN_NANOSECONDS 200000

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER;
static atomic_flag pool_busy = ATOMIC_FLAG_INIT;
static _Atomic uint64_t pool_generation;
static _Atomic int64_t pool_pending;
static _Atomic int64_t pool_sleeping;
static _Atomic uint64_t pool_parks;  // bumped by dream_pool_park: spinning threads go to sleep
static int64_t pool_threads;  // started so far (changed only by the caller holding pool_busy)
// The job, written before the generation bump and read after it.
static dream_pool_body pool_body;
static void *pool_context;
static int64_t pool_workers;

static uint64_t now_nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/// What a new thread starts from: its share index and the generation before the job it was started for.
typedef struct { int64_t index; uint64_t seen; } pool_start;

static void *pool_thread(void *argument) {
    const pool_start start = *(pool_start *)argument;
    free(argument);
    const int64_t index = start.index;
    uint64_t seen = start.seen;
    for (;;) {
        uint64_t generation = atomic_load_explicit(&pool_generation, memory_order_acquire);
        if (generation == seen) {
            const uint64_t deadline = now_nanoseconds() + POOL_SPIN_NANOSECONDS;
            const uint64_t parks = atomic_load_explicit(&pool_parks, memory_order_relaxed);
            for (unsigned spins = 1;; spins++) {
                DREAM_PAUSE();
                generation = atomic_load_explicit(&pool_generation, memory_order_acquire);
                if (generation != seen) break;
                if (atomic_load_explicit(&pool_parks, memory_order_relaxed) != parks) break;
                if ((spins & 63) == 0) {
                    sched_yield();  // whatever else wants this core (OpenBLAS's threads) gets it
                    if (now_nanoseconds() > deadline) break;
                }
            }
            if (generation == seen) {
                pthread_mutex_lock(&pool_lock);
                atomic_fetch_add(&pool_sleeping, 1);
                while ((generation = atomic_load(&pool_generation)) == seen) pthread_cond_wait(&pool_wake, &pool_lock);
                atomic_fetch_sub(&pool_sleeping, 1);
                pthread_mutex_unlock(&pool_lock);
            }
        }
        seen = generation;
        if (index < pool_workers) pool_body(pool_context, index);
        atomic_fetch_sub_explicit(&pool_pending, 1, memory_order_release);
    }
    return 0;
}

int dream_pool_run(int64_t workers, dream_pool_body body, void *context) {
    if (workers <= 1) {
        if (workers == 1) body(context, 0);
        return 1;
    }
    if (workers - 1 > POOL_MAX_THREADS) return 0;
    if (atomic_flag_test_and_set_explicit(&pool_busy, memory_order_acquire)) return 0;
    while (pool_threads < workers - 1) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        pool_start *start = malloc(sizeof(pool_start));
        int failed = start == 0;
        if (!failed) {
            start->index = pool_threads + 1;
            start->seen = atomic_load(&pool_generation);
            failed = pthread_create(&thread, &attributes, pool_thread, start);
            if (failed) free(start);
        }
        pthread_attr_destroy(&attributes);
        if (failed) {
            atomic_flag_clear_explicit(&pool_busy, memory_order_release);
            return 0;
        }
        pool_threads++;
    }
    pool_body = body;
    pool_context = context;
    pool_workers = workers;
    // Every started thread takes part (those without a share only report in).
    atomic_store_explicit(&pool_pending, pool_threads, memory_order_relaxed);
    atomic_fetch_add(&pool_generation, 1);
    if (atomic_load(&pool_sleeping) > 0) {
        pthread_mutex_lock(&pool_lock);
        pthread_cond_broadcast(&pool_wake);
        pthread_mutex_unlock(&pool_lock);
    }
    body(context, 0);
    for (unsigned spins = 1; atomic_load_explicit(&pool_pending, memory_order_acquire) > 0; spins++) {
        DREAM_PAUSE();
        if ((spins & 255) == 0) sched_yield();
    }
    atomic_flag_clear_explicit(&pool_busy, memory_order_release);
    return 1;
}

void dream_pool_park(void) { atomic_fetch_add_explicit(&pool_parks, 1, memory_order_relaxed); }
