// A small pool of persistent worker threads for `parallelFor` (Parallel.swift). Between jobs a worker spins on the
// job counter for a short while (yielding the core to anything else runnable) before it sleeps, so that a job
// following another within that time starts on every thread at once instead of after a kernel wake-up (a GCD worker
// took over 10 µs to join a job on the 2-core VM this was written on: longer than many small layers' whole share).
#ifndef DREAM_THREAD_POOL_H
#define DREAM_THREAD_POOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One share of a job: worker index in [0, workers).
typedef void (*dream_pool_body)(void *context, int64_t worker);

/// Runs body(context, w) for w in [0, workers): w = 0 on the calling thread, the others on pool threads; returns when
/// all have finished, with their writes visible to the caller. Returns 0 without running anything when the pool is
/// already running a job (a nested or concurrent call: the caller runs it another way), or when a thread cannot be
/// started; 1 when it ran the job.
int dream_pool_run(int64_t workers, dream_pool_body body, void *context);

/// Sends the threads spinning for a job to sleep at once: call before handing the cores to other threads (a
/// multi-threaded OpenBLAS call), whose workers would otherwise share a core with a spinning one.
void dream_pool_park(void);

#ifdef __cplusplus
}
#endif

#endif
