/* The denormal mode flag and the thread pool: the caller runs part of each loop, workers the rest. */
#include "common.h"

/* ---- denormals ----
 * Float32 values below 2^-126 (denormals) cost x86 and ARM cores ~100 cycles per operation. They
 * turn up in training: GELU of very negative inputs and the gradients that flow back through a
 * frozen LM (experiments/backend-native/micro.mjs: a weight-gradient product with 0.2% denormals, 3x slower). Like
 * TensorFlow's CPU runtime, every kernel here runs with denormals flushed to zero (inputs read as
 * zero, results below 2^-126 written as zero). The mode is set on entry to each addon call and
 * restored on exit, so JavaScript's own (IEEE) arithmetic on the main thread is untouched; pool
 * workers keep it on. ADAPTORKIT_NATIVE_DENORMALS=keep turns it off (gradual underflow, as the
 * tfjs cpu backend computes). */
int g_flush = 1;

/* ---- a tiny thread pool: the caller runs part 0, workers run the rest ----
 * Workers spin for up to ~1 ms after a task before sleeping on a condition variable: kernels come
 * in quick succession, and a futex wake-up per kernel costs more than most kernels take. */
int g_threads = 1;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static task_fn g_fn;
static void *g_ctx;
static int64_t g_n;
static atomic_ulong g_gen;
static atomic_int g_sleepers;
int g_pool_started;
int g_workers_started = 1;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Work is cut into chunks taken from a shared counter, so the caller finishes everything itself
 * when a worker is slow to wake (e.g. another process holds that core). A worker joins a task
 * only while it is open; the caller closes it when the chunks run out and then waits just for
 * the workers that joined. */
#define CLOSED (1 << 30)
static atomic_int g_state;  /* joined workers | CLOSED */
static atomic_int g_done;   /* joined workers finished */
static atomic_long g_next;  /* next chunk */
static int64_t g_chunks;

static void run_chunks(void) {
  int64_t c;
  while ((c = atomic_fetch_add(&g_next, 1)) < g_chunks) {
    int64_t b = g_n * c / g_chunks, e = g_n * (c + 1) / g_chunks;
    if (b < e) g_fn(g_ctx, b, e);
  }
}

static void *worker_main(void *arg) {
  (void)arg;
  (void)fp_flush_on(); /* for the life of the worker */
  unsigned long seen = atomic_load(&g_gen);
  for (;;) {
    if (atomic_load(&g_gen) == seen) {
      double until = now_s() + 2e-4;
      int k = 0;
      while (atomic_load(&g_gen) == seen) {
        cpu_relax();
        if (++k == 256) {
          k = 0;
          if (now_s() > until) break;
        }
      }
      if (atomic_load(&g_gen) == seen) {
        pthread_mutex_lock(&g_mu);
        atomic_fetch_add(&g_sleepers, 1);
        while (atomic_load(&g_gen) == seen) pthread_cond_wait(&g_cv, &g_mu);
        atomic_fetch_sub(&g_sleepers, 1);
        pthread_mutex_unlock(&g_mu);
      }
    }
    seen = atomic_load(&g_gen);
    int v = atomic_load(&g_state);
    int joined = 0;
    while (!(v & CLOSED)) {
      if (atomic_compare_exchange_weak(&g_state, &v, v + 1)) {
        joined = 1;
        break;
      }
    }
    if (!joined) continue;
    run_chunks();
    atomic_fetch_add(&g_done, 1);
  }
  return NULL;
}

void pool_start(int threads) {
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  g_threads = threads;
  if (g_pool_started) return;
  g_pool_started = 1;
  for (int i = 1; i < g_threads; i++) {
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, worker_main, (void *)(intptr_t)i);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
      g_threads = i;
      break;
    }
    g_workers_started = i + 1;
  }
}

/* Below this much work (elements x cost) a loop runs on the calling thread only. */
void parallel_for(int64_t n, int64_t cost_per_item, task_fn fn, void *ctx) {
  if (n <= 0) return;
  if (g_threads <= 1 || n < 2 || n * cost_per_item < PAR_MIN) {
    fn(ctx, 0, n);
    return;
  }
  int64_t chunks = (int64_t)g_threads * 4;
  if (chunks > n) chunks = n;
  g_fn = fn;
  g_ctx = ctx;
  g_n = n;
  g_chunks = chunks;
  atomic_store(&g_next, 0);
  atomic_store(&g_done, 0);
  atomic_store(&g_state, 0);
  atomic_fetch_add(&g_gen, 1); /* publishes the fields above (seq_cst) */
  if (atomic_load(&g_sleepers) > 0) {
    pthread_mutex_lock(&g_mu);
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
  }
  run_chunks();
  int joined = atomic_fetch_or(&g_state, CLOSED) & ~CLOSED;
  while (atomic_load(&g_done) < joined) cpu_relax();
}
