/*
 * adaptorkit native kernels: an N-API addon that works in place on the TypedArrays a tfjs
 * MathBackendCPU holds (zero copy). MatMul goes to OpenBLAS (cblas_sgemm); elementwise ops,
 * softmax, reductions, transpose, gather and segment sums are plain loops that GCC vectorizes.
 * Large loops are split over a small pthread pool (one worker per extra core).
 *
 * The cblas prototypes are declared here so that only the OpenBLAS shared library is needed
 * (no header); the library path is found at configure time (scripts/find-openblas.mjs).
 */
#include <node_api.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- OpenBLAS ABI (cblas.h values) ---- */
enum { CblasRowMajor = 101 };
enum { CblasNoTrans = 111, CblasTrans = 112 };
extern void cblas_sgemm(int order, int transA, int transB, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
extern void openblas_set_num_threads(int n);
extern int openblas_get_num_threads(void);
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);

/* ---- denormals ----
 * Float32 values below 2^-126 (denormals) cost x86 and ARM cores ~100 cycles per operation. They
 * turn up in training: GELU of very negative inputs and the gradients that flow back through a
 * frozen LM (bench/micro.mjs: a weight-gradient product with 0.2% denormals, 3x slower). Like
 * TensorFlow's CPU runtime, every kernel here runs with denormals flushed to zero (inputs read as
 * zero, results below 2^-126 written as zero). The mode is set on entry to each addon call and
 * restored on exit, so JavaScript's own (IEEE) arithmetic on the main thread is untouched; pool
 * workers keep it on. ADAPTORKIT_NATIVE_DENORMALS=keep turns it off (gradual underflow, as the
 * tfjs cpu backend computes). */
static int g_flush = 1;
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
typedef unsigned int fpmode_t;
static inline fpmode_t fp_flush_on(void) {
  fpmode_t m = _mm_getcsr();
  if (g_flush) _mm_setcsr(m | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
  return m;
}
static inline void fp_restore(fpmode_t m) { _mm_setcsr(m); }
#elif defined(__aarch64__)
typedef uint64_t fpmode_t;
static inline fpmode_t fp_flush_on(void) {
  fpmode_t m;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(m));
  if (g_flush) {
    fpmode_t f = m | (1ull << 24); /* FZ */
    __asm__ __volatile__("msr fpcr, %0" : : "r"(f));
  }
  return m;
}
static inline void fp_restore(fpmode_t m) { __asm__ __volatile__("msr fpcr, %0" : : "r"(m)); }
#else
typedef int fpmode_t;
static inline fpmode_t fp_flush_on(void) { return 0; }
static inline void fp_restore(fpmode_t m) { (void)m; }
#endif

/* ---- a tiny thread pool: the caller runs part 0, workers run the rest ----
 * Workers spin for up to ~1 ms after a task before sleeping on a condition variable: kernels come
 * in quick succession, and a futex wake-up per kernel costs more than most kernels take. */
#include <stdatomic.h>
#include <time.h>
typedef void (*task_fn)(void *ctx, int64_t begin, int64_t end);
#define MAX_THREADS 16
static int g_threads = 1;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static task_fn g_fn;
static void *g_ctx;
static int64_t g_n;
static atomic_ulong g_gen;
static atomic_int g_pending;
static atomic_int g_sleepers;
static int g_pool_started;
static int g_workers_started = 1;

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

static void pool_start(int threads) {
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
#define PAR_MIN 16384
static void parallel_for(int64_t n, int64_t cost_per_item, task_fn fn, void *ctx) {
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

/* ---- vectorizable exp: range reduction + polynomial, branch-free so GCC vectorizes it ----
 * fast_expf: float, ~1e-7 relative. exp_d: double, ~1e-15 relative, used where a result must
 * round like the cpu backend's Math.exp (sigmoid and tanh feed 1 - y^2 and y(1 - y) in gradients). */
static inline float fast_expf(float x) {
  float xc = x < -87.0f ? -87.0f : x;
  xc = xc > 88.0f ? 88.0f : xc;
  float fx = xc * 1.44269504088896341f + 12582912.0f; /* round to nearest via the 1.5*2^23 trick */
  int32_t n;
  memcpy(&n, &fx, 4);
  n -= 0x4B400000;
  fx -= 12582912.0f;
  float r = xc - fx * 0.693359375f + fx * 2.12194440e-4f;
  float r2 = r * r;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r2 + r + 1.0f;
  int32_t bits = (n + 127) << 23;
  float sc;
  memcpy(&sc, &bits, 4);
  float y = p * sc;
  y = x < -87.0f ? 0.f : y;
  y = x > 88.72283f ? INFINITY : y;
  return x != x ? x : y;
}

static inline double exp_d(double x) {
  double xc = x < -708.0 ? -708.0 : x;
  xc = xc > 709.0 ? 709.0 : xc;
  double fn = xc * 1.4426950408889634 + 6755399441055744.0; /* 1.5*2^52 */
  int64_t n;
  memcpy(&n, &fn, 8);
  n -= 0x4338000000000000LL;
  fn -= 6755399441055744.0;
  double r = xc - fn * 6.93147180369123816490e-01 - fn * 1.90821492927058770002e-10;
  double p = 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  int64_t bits = (n + 1023) << 52;
  double sc;
  memcpy(&sc, &bits, 8);
  double y = p * sc;
  y = x < -708.0 ? 0.0 : y;
  y = x > 709.0 ? INFINITY : y;
  return x != x ? x : y;
}

/* ---- N-API helpers ---- */
#define NAPI_CALL(env, call)                                            \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error((env), "ADAPTORKIT_NATIVE", "N-API call failed: " #call); \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "ADAPTORKIT_NATIVE", "too few arguments to a native kernel");
    return 0;
  }
  return 1;
}

static void *typed_data(napi_env env, napi_value v, size_t *len, napi_typedarray_type want) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) {
    napi_throw_type_error(env, "ADAPTORKIT_NATIVE", "expected a TypedArray argument");
    return NULL;
  }
  napi_typedarray_type t;
  size_t n;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, &n, &data, &ab, &off) != napi_ok) return NULL;
  if (t != want) {
    napi_throw_type_error(env, "ADAPTORKIT_NATIVE", "TypedArray of the wrong element type");
    return NULL;
  }
  if (len) *len = n;
  /* An empty array may have a NULL data pointer; hand back a valid dummy. */
  static float dummy[1];
  return data ? data : (void *)dummy;
}

static int64_t get_i64(napi_env env, napi_value v) {
  int64_t x = 0;
  napi_get_value_int64(env, v, &x);
  return x;
}
static double get_f64(napi_env env, napi_value v) {
  double x = 0;
  napi_get_value_double(env, v, &x);
  return x;
}

#define F32(i) ((float *)typed_data(env, argv[i], NULL, napi_float32_array))
#define I32(i) ((int32_t *)typed_data(env, argv[i], NULL, napi_int32_array))

/* ---- gemm ----
 * bmm(transA, transB, M, N, K, A, B, C, batch, aOffs|null, bOffs|null, beta)
 * C[b] = A[aOffs[b]] x B[bOffs[b]] (+ beta*C[b]); C is [batch, M, N] contiguous. */
typedef struct {
  int ta, tb, M, N, K;
  const float *A, *B;
  float *C;
  const int32_t *ao, *bo;
  float beta;
  int parts; /* >1: one product split into `parts` row (or column) blocks */
  int by_cols;
} bmm_ctx;

static void gemm_block(const bmm_ctx *c, const float *A, const float *B, float *C, int m0, int m1, int n0, int n1) {
  if (m1 <= m0 || n1 <= n0) return;
  const float *a = c->ta ? A + m0 : A + (int64_t)m0 * c->K;
  const float *b = c->tb ? B + (int64_t)n0 * c->K : B + n0;
  cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans, c->tb ? CblasTrans : CblasNoTrans, m1 - m0, n1 - n0, c->K, 1.0f, a,
              c->ta ? c->M : c->K, b, c->tb ? c->K : c->N, c->beta, C + (int64_t)m0 * c->N + n0, c->N);
}

static void bmm_task(void *p, int64_t b0, int64_t b1) {
  bmm_ctx *c = (bmm_ctx *)p;
  if (c->parts > 1) {
    for (int64_t t = b0; t < b1; t++) {
      if (c->by_cols) {
        int n0 = (int)((int64_t)c->N * t / c->parts), n1 = (int)((int64_t)c->N * (t + 1) / c->parts);
        gemm_block(c, c->A, c->B, c->C, 0, c->M, n0, n1);
      } else {
        int m0 = (int)((int64_t)c->M * t / c->parts), m1 = (int)((int64_t)c->M * (t + 1) / c->parts);
        gemm_block(c, c->A, c->B, c->C, m0, m1, 0, c->N);
      }
    }
    return;
  }
  for (int64_t b = b0; b < b1; b++) {
    const float *A = c->A + (c->ao ? c->ao[b] : b * (int64_t)c->M * c->K);
    const float *B = c->B + (c->bo ? c->bo[b] : b * (int64_t)c->K * c->N);
    float *C = c->C + b * (int64_t)c->M * c->N;
    gemm_block(c, A, B, C, 0, c->M, 0, c->N);
  }
}

/* OpenBLAS runs single-threaded; products are split over this addon's own pool (batch entries,
 * or row/column blocks of one product). One pool for everything: OpenBLAS's own worker threads
 * spin for a long time after each call and then steal the core from the elementwise kernels. */
static napi_value js_bmm(napi_env env, napi_callback_info info) {
  napi_value argv[12];
  if (!get_args(env, info, 12, argv)) return NULL;
  bmm_ctx c;
  memset(&c, 0, sizeof c);
  c.ta = (int)get_i64(env, argv[0]);
  c.tb = (int)get_i64(env, argv[1]);
  c.M = (int)get_i64(env, argv[2]);
  c.N = (int)get_i64(env, argv[3]);
  c.K = (int)get_i64(env, argv[4]);
  c.A = F32(5);
  c.B = F32(6);
  c.C = F32(7);
  int64_t batch = get_i64(env, argv[8]);
  napi_valuetype t;
  napi_typeof(env, argv[9], &t);
  c.ao = t == napi_null || t == napi_undefined ? NULL : I32(9);
  napi_typeof(env, argv[10], &t);
  c.bo = t == napi_null || t == napi_undefined ? NULL : I32(10);
  c.beta = (float)get_f64(env, argv[11]);
  if (!c.A || !c.B || !c.C) return NULL;
  if (c.M == 0 || c.N == 0 || batch == 0) return NULL;
  if (c.K == 0) {
    if (c.beta == 0.f) memset(c.C, 0, sizeof(float) * (size_t)batch * c.M * c.N);
    return NULL;
  }
  int64_t work = (int64_t)c.M * c.N * c.K;
  if (batch >= g_threads || g_threads == 1) {
    parallel_for(batch, work, bmm_task, &c);
  } else {
    for (int64_t b = 0; b < batch; b++) {
      bmm_ctx one = c;
      one.A = c.A + (c.ao ? c.ao[b] : b * (int64_t)c.M * c.K);
      one.B = c.B + (c.bo ? c.bo[b] : b * (int64_t)c.K * c.N);
      one.C = c.C + b * (int64_t)c.M * c.N;
      one.ao = one.bo = NULL;
      one.by_cols = c.N > c.M;
      int span = one.by_cols ? c.N : c.M;
      /* blocks of at least 32 rows/columns */
      one.parts = span / 32 < g_threads ? (span / 32 > 1 ? span / 32 : 1) : g_threads;
      if (one.parts <= 1 || work < 64 * 64 * 64) {
        one.parts = 0;
        bmm_task(&one, 0, 1);
      } else {
        parallel_for(one.parts, PAR_MIN, bmm_task, &one);
      }
    }
  }
  return NULL;
}

/* ---- binary elementwise with broadcasting ----
 * binary(op, a, b, out, shape:Int32, aStrides:Int32, bStrides:Int32) — shape is the output's,
 * strides are element strides (0 on broadcast dims); rank <= 8 after merging in JS. */
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MAX, OP_MIN, OP_SQDIFF, OP_POW, OP_DIVNONAN };
typedef struct {
  int op, rank;
  const float *a, *b;
  float *o;
  int64_t shape[8], as[8], bs[8];
  int64_t blocks; /* each output row is cut into this many blocks (work items: rows x blocks) */
} bin_ctx;

#define BIN_LOOP(EXPR)                                                     \
  if (sa == 1 && sb == 1) {                                                \
    for (int64_t j = 0; j < n; j++) { float x = a[j], y = b[j]; o[j] = EXPR; } \
  } else if (sa == 1 && sb == 0) {                                         \
    float y = b[0];                                                        \
    for (int64_t j = 0; j < n; j++) { float x = a[j]; o[j] = EXPR; }       \
  } else if (sa == 0 && sb == 1) {                                         \
    float x = a[0];                                                        \
    for (int64_t j = 0; j < n; j++) { float y = b[j]; o[j] = EXPR; }       \
  } else {                                                                 \
    for (int64_t j = 0; j < n; j++) { float x = a[j * sa], y = b[j * sb]; o[j] = EXPR; } \
  }

static void bin_inner(int op, const float *a, const float *b, float *o, int64_t n, int64_t sa, int64_t sb) {
  switch (op) {
    case OP_ADD: BIN_LOOP(x + y) break;
    case OP_SUB: BIN_LOOP(x - y) break;
    case OP_MUL: BIN_LOOP(x * y) break;
    case OP_DIV: BIN_LOOP(x / y) break;
    case OP_MAX: BIN_LOOP((x != x || y != y) ? NAN : (x > y ? x : y)) break;
    case OP_MIN: BIN_LOOP((x != x || y != y) ? NAN : (x < y ? x : y)) break;
    case OP_SQDIFF: BIN_LOOP((x - y) * (x - y)) break;
    case OP_POW: BIN_LOOP(powf(x, y)) break;
    case OP_DIVNONAN: BIN_LOOP(y == 0.f ? 0.f : x / y) break;
  }
}

static void bin_task(void *p, int64_t w0, int64_t w1) {
  bin_ctx *c = (bin_ctx *)p;
  int outer_rank = c->rank - 1;
  int64_t n = c->shape[c->rank - 1];
  int64_t sa = c->as[c->rank - 1], sb = c->bs[c->rank - 1];
  for (int64_t w = w0; w < w1; w++) {
    int64_t r = w / c->blocks, k = w % c->blocks;
    int64_t j0 = n * k / c->blocks, j1 = n * (k + 1) / c->blocks;
    int64_t rem = r, ao = 0, bo = 0;
    for (int d = outer_rank - 1; d >= 0; d--) {
      int64_t i = rem % c->shape[d];
      rem /= c->shape[d];
      ao += i * c->as[d];
      bo += i * c->bs[d];
    }
    bin_inner(c->op, c->a + ao + j0 * sa, c->b + bo + j0 * sb, c->o + r * n + j0, j1 - j0, sa, sb);
  }
}

static int read_dims(napi_env env, napi_value v, int64_t *dst, int *rank) {
  size_t n;
  int32_t *p = (int32_t *)typed_data(env, v, &n, napi_int32_array);
  if (!p || n > 8) {
    if (p) napi_throw_range_error(env, "ADAPTORKIT_NATIVE", "rank above 8 after merging dims");
    return 0;
  }
  for (size_t i = 0; i < n; i++) dst[i] = p[i];
  if (rank) *rank = (int)n;
  return 1;
}

static napi_value js_binary(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) return NULL;
  bin_ctx c;
  c.op = (int)get_i64(env, argv[0]);
  c.a = F32(1);
  c.b = F32(2);
  c.o = F32(3);
  if (!c.a || !c.b || !c.o) return NULL;
  if (!read_dims(env, argv[4], c.shape, &c.rank) || !read_dims(env, argv[5], c.as, NULL) ||
      !read_dims(env, argv[6], c.bs, NULL))
    return NULL;
  if (c.rank == 0) {
    bin_inner(c.op, c.a, c.b, c.o, 1, 0, 0);
    return NULL;
  }
  int64_t rows = 1;
  for (int d = 0; d < c.rank - 1; d++) rows *= c.shape[d];
  int64_t n = c.shape[c.rank - 1];
  if (rows * n == 0) return NULL;
  /* Few long rows (same-shape operands merge into one row): cut rows into blocks of >= 4096
   * elements so that the pool shares them too. */
  c.blocks = 1;
  if (rows < 4 * (int64_t)g_threads && n >= 8192) {
    int64_t want = (4 * (int64_t)g_threads + rows - 1) / rows, most = n / 4096;
    c.blocks = want < most ? want : most;
  }
  parallel_for(rows * c.blocks, n / c.blocks, bin_task, &c);
  return NULL;
}

/* ---- unary ---- */
enum {
  U_EXP, U_LOG, U_SQRT, U_RSQRT, U_NEG, U_SIGMOID, U_TANH, U_RELU, U_SQUARE, U_ABS, U_RECIP,
  U_STEP, U_ERF, U_SOFTPLUS, U_LOG1P, U_EXPM1, U_SIN, U_COS, U_ELU, U_RELU6, U_SIGN, U_SCALE_ADD
};
typedef struct {
  int op;
  const float *x;
  float *o;
  float p0, p1;
} un_ctx;

static void un_task(void *p, int64_t b, int64_t e) {
  un_ctx *c = (un_ctx *)p;
  const float *x = c->x;
  float *o = c->o;
  float p0 = c->p0, p1 = c->p1;
  switch (c->op) {
    case U_EXP: for (int64_t i = b; i < e; i++) o[i] = fast_expf(x[i]); break; /* ~1e-7 relative */
    case U_LOG: for (int64_t i = b; i < e; i++) o[i] = logf(x[i]); break;
    case U_SQRT: for (int64_t i = b; i < e; i++) o[i] = sqrtf(x[i]); break;
    case U_RSQRT: for (int64_t i = b; i < e; i++) o[i] = 1.0f / sqrtf(x[i]); break;
    case U_NEG: for (int64_t i = b; i < e; i++) o[i] = -x[i]; break;
    case U_SIGMOID: for (int64_t i = b; i < e; i++) o[i] = (float)(1.0 / (1.0 + exp_d(-(double)x[i]))); break;
    case U_TANH:
      for (int64_t i = b; i < e; i++) {
        double v = x[i];
        double a = v < 0 ? -v : v;
        double t = exp_d(-2.0 * a);
        double r = (1.0 - t) / (1.0 + t);
        double y = v < 0 ? -r : r;
        o[i] = (float)(a < 1e-10 ? v : y);
      }
      break;
    case U_RELU: for (int64_t i = b; i < e; i++) { float v = x[i]; o[i] = v < 0.f ? 0.f : v; } break;
    case U_SQUARE: for (int64_t i = b; i < e; i++) o[i] = x[i] * x[i]; break;
    case U_ABS: for (int64_t i = b; i < e; i++) o[i] = fabsf(x[i]); break;
    case U_RECIP: for (int64_t i = b; i < e; i++) o[i] = 1.0f / x[i]; break;
    case U_STEP: for (int64_t i = b; i < e; i++) { float v = x[i]; o[i] = v != v ? NAN : (v > 0.f ? 1.f : p0); } break;
    case U_ERF: for (int64_t i = b; i < e; i++) o[i] = erff(x[i]); break;
    case U_SOFTPLUS:
      for (int64_t i = b; i < e; i++) { float v = x[i]; o[i] = v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v)); }
      break;
    case U_LOG1P: for (int64_t i = b; i < e; i++) o[i] = log1pf(x[i]); break;
    case U_EXPM1: for (int64_t i = b; i < e; i++) o[i] = expm1f(x[i]); break;
    case U_SIN: for (int64_t i = b; i < e; i++) o[i] = sinf(x[i]); break;
    case U_COS: for (int64_t i = b; i < e; i++) o[i] = cosf(x[i]); break;
    case U_ELU: for (int64_t i = b; i < e; i++) { float v = x[i]; o[i] = v >= 0 ? v : expm1f(v); } break;
    case U_RELU6: for (int64_t i = b; i < e; i++) { float v = x[i]; o[i] = v < 0.f ? 0.f : (v > 6.f ? 6.f : v); } break;
    case U_SIGN: for (int64_t i = b; i < e; i++) { float v = x[i]; o[i] = v > 0 ? 1.f : (v < 0 ? -1.f : 0.f); } break;
    case U_SCALE_ADD: for (int64_t i = b; i < e; i++) o[i] = x[i] * p0 + p1; break;
  }
}

static napi_value js_unary(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  un_ctx c;
  size_t n;
  c.op = (int)get_i64(env, argv[0]);
  c.x = (const float *)typed_data(env, argv[1], &n, napi_float32_array);
  c.o = F32(2);
  c.p0 = (float)get_f64(env, argv[3]);
  c.p1 = (float)get_f64(env, argv[4]);
  if (!c.x || !c.o) return NULL;
  int cost = (c.op == U_ERF || c.op == U_LOG || c.op == U_SOFTPLUS || c.op == U_SIN || c.op == U_COS) ? 8 : 1;
  parallel_for((int64_t)n, cost, un_task, &c);
  return NULL;
}

/* ---- row reductions written so that they vectorize without -ffast-math: 16 independent lanes ---- */
/* GCC/Clang vector extensions: 8 floats per op on any target (AVX2/AVX-512 here, pairs of NEON
 * registers on arm64). A compare yields a 0/-1 lane mask; the blend is written with bit masks,
 * which compiles to one masked move. */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

/* max (sign > 0) or min (sign < 0) of x[0..n); NaN if any element is NaN. */
static inline float row_extreme(const float *x, int64_t n, int want_max) {
  const float init = want_max ? -INFINITY : INFINITY;
  v8f m0 = {init, init, init, init, init, init, init, init}, m1 = m0;
  v8i bad = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    v8f a, b;
    memcpy(&a, x + j, sizeof a);
    memcpy(&b, x + j + 8, sizeof b);
    v8i ga = want_max ? (a > m0) : (a < m0);
    v8i gb = want_max ? (b > m1) : (b < m1);
    bad |= (a != a) | (b != b);
    m0 = (v8f)(((v8i)a & ga) | ((v8i)m0 & ~ga));
    m1 = (v8f)(((v8i)b & gb) | ((v8i)m1 & ~gb));
  }
  float acc = init;
  int nb = 0;
  for (int k = 0; k < 8; k++) {
    float p = m0[k], q = m1[k];
    nb |= bad[k];
    if (want_max) { acc = p > acc ? p : acc; acc = q > acc ? q : acc; }
    else { acc = p < acc ? p : acc; acc = q < acc ? q : acc; }
  }
  for (; j < n; j++) {
    float v = x[j];
    nb |= v != v;
    if (want_max) acc = v > acc ? v : acc;
    else acc = v < acc ? v : acc;
  }
  return nb ? NAN : acc;
}
static inline float row_max(const float *x, int64_t n, int *nan) {
  float m = row_extreme(x, n, 1);
  if (nan) *nan = m != m;
  return m;
}
static inline float row_min(const float *x, int64_t n) { return row_extreme(x, n, 0); }
static inline float row_sum(const float *x, int64_t n) {
  float s[16];
  for (int k = 0; k < 16; k++) s[k] = 0.f;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int k = 0; k < 16; k++) s[k] += x[j + k];
  float acc = 0.f;
  for (; j < n; j++) acc += x[j];
  for (int k = 0; k < 16; k++) acc += s[k];
  return acc;
}

/* ---- softmax over the last axis ---- */
typedef struct {
  const float *x;
  float *o;
  int64_t cols;
  int log;
} sm_ctx;

static void sm_task(void *p, int64_t r0, int64_t r1) {
  sm_ctx *c = (sm_ctx *)p;
  int64_t n = c->cols;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = c->x + r * n;
    float *o = c->o + r * n;
    float m = row_max(x, n, NULL);
    if (m == -INFINITY) m = 0.f;
    /* exp into o, then sum o: two loops that each vectorize (a running sum inside the exp loop
     * is a serial float reduction, which the compiler may not reorder) */
    for (int64_t j = 0; j < n; j++) o[j] = fast_expf(x[j] - m);
    float s = row_sum(o, n);
    if (c->log) {
      float ls = logf(s) + m;
      for (int64_t j = 0; j < n; j++) o[j] = x[j] - ls;
    } else {
      float inv = 1.0f / s;
      for (int64_t j = 0; j < n; j++) o[j] *= inv;
    }
  }
}

static napi_value js_softmax(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  sm_ctx c;
  c.x = F32(0);
  c.o = F32(1);
  int64_t rows = get_i64(env, argv[2]);
  c.cols = get_i64(env, argv[3]);
  c.log = (int)get_i64(env, argv[4]);
  if (!c.x || !c.o) return NULL;
  if (c.cols == 0) return NULL;
  parallel_for(rows, c.cols * 4, sm_task, &c);
  return NULL;
}

/* ---- fused transformer pieces (each replaces 3-6 tfjs kernels and as many passes over memory) ---- */

/* rmsnorm(x[rows, cols], n, r[rows], rows, cols, eps): r = 1 / sqrt(mean(x^2) + eps), n = x * r.
 * rmsnorm_grad(dy, n, r, dx, rows, cols): dx = r * (dy - n * mean(dy * n)). Row sums in double. */
typedef struct {
  const float *x, *n, *r, *dy;
  float *n_out, *r_out, *dx;
  int64_t cols;
  float eps;
} norm_ctx;

static void rms_task(void *p, int64_t r0, int64_t r1) {
  norm_ctx *c = (norm_ctx *)p;
  int64_t n = c->cols;
  for (int64_t i = r0; i < r1; i++) {
    const float *x = c->x + i * n;
    float *o = c->n_out + i * n;
    double ss = 0;
    for (int64_t j = 0; j < n; j++) ss += (double)x[j] * x[j];
    float rr = (float)(1.0 / sqrt(ss / (double)n + (double)c->eps));
    c->r_out[i] = rr;
    for (int64_t j = 0; j < n; j++) o[j] = x[j] * rr;
  }
}

static void rms_grad_task(void *p, int64_t r0, int64_t r1) {
  norm_ctx *c = (norm_ctx *)p;
  int64_t n = c->cols;
  for (int64_t i = r0; i < r1; i++) {
    const float *dy = c->dy + i * n, *nn = c->n + i * n;
    float *dx = c->dx + i * n;
    double s = 0;
    for (int64_t j = 0; j < n; j++) s += (double)dy[j] * nn[j];
    float m = (float)(s / (double)n), rr = c->r[i];
    for (int64_t j = 0; j < n; j++) dx[j] = rr * (dy[j] - nn[j] * m);
  }
}



/* layernorm(x[rows, cols], n, r[rows], rows, cols, eps): mu = mean(x), r = 1 / sqrt(mean((x - mu)^2) + eps),
 * n = (x - mu) * r.  layernorm_grad(dy, n, r, dx, rows, cols): dx = r * (dy - mean(dy) - n * mean(dy * n)). */
static void ln_task(void *p, int64_t r0, int64_t r1) {
  norm_ctx *c = (norm_ctx *)p;
  int64_t n = c->cols;
  for (int64_t i = r0; i < r1; i++) {
    const float *x = c->x + i * n;
    float *o = c->n_out + i * n;
    double s = 0;
    for (int64_t j = 0; j < n; j++) s += x[j];
    float mu = (float)(s / (double)n);
    double v = 0;
    for (int64_t j = 0; j < n; j++) {
      double d = (double)(x[j] - mu);
      v += d * d;
    }
    float rr = (float)(1.0 / sqrt(v / (double)n + (double)c->eps));
    c->r_out[i] = rr;
    for (int64_t j = 0; j < n; j++) o[j] = (x[j] - mu) * rr;
  }
}

static void ln_grad_task(void *p, int64_t r0, int64_t r1) {
  norm_ctx *c = (norm_ctx *)p;
  int64_t n = c->cols;
  for (int64_t i = r0; i < r1; i++) {
    const float *dy = c->dy + i * n, *nn = c->n + i * n;
    float *dx = c->dx + i * n;
    double a = 0, b = 0;
    for (int64_t j = 0; j < n; j++) {
      a += dy[j];
      b += (double)dy[j] * nn[j];
    }
    float ma = (float)(a / (double)n), mb = (float)(b / (double)n), rr = c->r[i];
    for (int64_t j = 0; j < n; j++) dx[j] = rr * (dy[j] - ma - nn[j] * mb);
  }
}



/* The four norm entry points share their argument lists:
 * forward (x, n, r, rows, cols, eps), gradient (dy, n, r, dx, rows, cols). */
static napi_value norm_call(napi_env env, napi_callback_info info, task_fn task, int64_t cost) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  norm_ctx c;
  memset(&c, 0, sizeof c);
  c.x = F32(0);
  c.n_out = F32(1);
  c.r_out = F32(2);
  int64_t rows = get_i64(env, argv[3]);
  c.cols = get_i64(env, argv[4]);
  c.eps = (float)get_f64(env, argv[5]);
  if (!c.x || !c.n_out || !c.r_out || c.cols <= 0) return NULL;
  parallel_for(rows, c.cols * cost, task, &c);
  return NULL;
}

static napi_value norm_grad_call(napi_env env, napi_callback_info info, task_fn task) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  norm_ctx c;
  memset(&c, 0, sizeof c);
  c.dy = F32(0);
  c.n = F32(1);
  c.r = F32(2);
  c.dx = F32(3);
  int64_t rows = get_i64(env, argv[4]);
  c.cols = get_i64(env, argv[5]);
  if (!c.dy || !c.n || !c.r || !c.dx || c.cols <= 0) return NULL;
  parallel_for(rows, c.cols * 3, task, &c);
  return NULL;
}

static napi_value js_rmsnorm(napi_env env, napi_callback_info info) { return norm_call(env, info, rms_task, 2); }
static napi_value js_rmsnorm_grad(napi_env env, napi_callback_info info) { return norm_grad_call(env, info, rms_grad_task); }
static napi_value js_layernorm(napi_env env, napi_callback_info info) { return norm_call(env, info, ln_task, 3); }
static napi_value js_layernorm_grad(napi_env env, napi_callback_info info) { return norm_grad_call(env, info, ln_grad_task); }

/* swiglu(g, u, y, n): y = silu(g) * u = g * sigmoid(g) * u.
 * swiglu_grad(dy, g, u, dg, du, n): du = dy * silu(g), dg = dy * u * s * (1 + g * (1 - s)). */
typedef struct {
  const float *g, *u, *dy;
  float *y, *dg, *du;
} glu_ctx;

static inline float sigmoid_f(float g) { return 1.0f / (1.0f + fast_expf(-g)); }

static void glu_task(void *p, int64_t i0, int64_t i1) {
  glu_ctx *c = (glu_ctx *)p;
  for (int64_t i = i0; i < i1; i++) {
    float g = c->g[i];
    c->y[i] = g * sigmoid_f(g) * c->u[i];
  }
}

static void glu_grad_task(void *p, int64_t i0, int64_t i1) {
  glu_ctx *c = (glu_ctx *)p;
  for (int64_t i = i0; i < i1; i++) {
    float g = c->g[i], s = sigmoid_f(g), d = c->dy[i];
    c->du[i] = d * g * s;
    c->dg[i] = d * c->u[i] * s * (1.0f + g * (1.0f - s));
  }
}

static napi_value js_swiglu(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  glu_ctx c;
  memset(&c, 0, sizeof c);
  c.g = F32(0);
  c.u = F32(1);
  c.y = F32(2);
  int64_t n = get_i64(env, argv[3]);
  if (!c.g || !c.u || !c.y) return NULL;
  parallel_for(n, 8, glu_task, &c);
  return NULL;
}

static napi_value js_swiglu_grad(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  glu_ctx c;
  memset(&c, 0, sizeof c);
  c.dy = F32(0);
  c.g = F32(1);
  c.u = F32(2);
  c.dg = F32(3);
  c.du = F32(4);
  int64_t n = get_i64(env, argv[5]);
  if (!c.dy || !c.g || !c.u || !c.dg || !c.du) return NULL;
  parallel_for(n, 12, glu_grad_task, &c);
  return NULL;
}

/* rope(x[outer, T, hd], cos[T, hd], sin[T, hd], y, outer, T, hd, inverse): rotate-half RoPE,
 * y = x * cos + rotate_half(x) * sin with rotate_half(x) = [-x2, x1]; inverse = its transpose
 * (the gradient): y = x * cos + rotate_half^T(x * sin), rotate_half^T(z) = [z2, -z1]. */
typedef struct {
  const float *x, *cos, *sin;
  float *y;
  int64_t T, hd;
  int inverse;
} rope_ctx;

static void rope_task(void *p, int64_t r0, int64_t r1) {
  rope_ctx *c = (rope_ctx *)p;
  int64_t hd = c->hd, h = hd / 2;
  for (int64_t r = r0; r < r1; r++) {
    int64_t t = r % c->T;
    const float *x = c->x + r * hd, *cs = c->cos + t * hd, *sn = c->sin + t * hd;
    float *y = c->y + r * hd;
    if (!c->inverse) {
      for (int64_t j = 0; j < h; j++) {
        y[j] = x[j] * cs[j] - x[j + h] * sn[j];
        y[j + h] = x[j + h] * cs[j + h] + x[j] * sn[j + h];
      }
    } else {
      for (int64_t j = 0; j < h; j++) {
        y[j] = x[j] * cs[j] + x[j + h] * sn[j + h];
        y[j + h] = x[j + h] * cs[j + h] - x[j] * sn[j];
      }
    }
  }
}

static napi_value js_rope(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!get_args(env, info, 8, argv)) return NULL;
  rope_ctx c;
  memset(&c, 0, sizeof c);
  c.x = F32(0);
  c.cos = F32(1);
  c.sin = F32(2);
  c.y = F32(3);
  int64_t rows = get_i64(env, argv[4]);
  c.T = get_i64(env, argv[5]);
  c.hd = get_i64(env, argv[6]);
  c.inverse = (int)get_i64(env, argv[7]);
  if (!c.x || !c.cos || !c.sin || !c.y || c.T <= 0 || c.hd <= 0 || (c.hd & 1)) return NULL;
  parallel_for(rows * c.T, c.hd * 2, rope_task, &c);
  return NULL;
}

/* attn_softmax(x[rows, S], y, rows, S, Tq, past, causal, scale): y = softmax(scale * x) over each
 * row, where row r is query position t = r % Tq and, when causal, only keys j <= past + t take part
 * (the others get exactly 0, as an additive -1e9 mask gives).
 * attn_softmax_grad(dy, y, dx, rows, S, scale): dx = scale * y * (dy - sum(dy * y)). */
typedef struct {
  const float *x, *y, *dy;
  float *o, *dx;
  int64_t S, Tq, past;
  int causal;
  float scale;
} asm_ctx;

static void asm_task(void *p, int64_t r0, int64_t r1) {
  asm_ctx *c = (asm_ctx *)p;
  int64_t S = c->S;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = c->x + r * S;
    float *o = c->o + r * S;
    int64_t n = S;
    if (c->causal) {
      n = c->past + r % c->Tq + 1;
      if (n > S) n = S;
    }
    float m = -INFINITY;
    for (int64_t j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
    float sm = c->scale * m;
    if (!(sm > -INFINITY)) sm = 0.f;
    for (int64_t j = 0; j < n; j++) o[j] = fast_expf(c->scale * x[j] - sm);
    float inv = 1.0f / row_sum(o, n);
    for (int64_t j = 0; j < n; j++) o[j] *= inv;
    for (int64_t j = n; j < S; j++) o[j] = 0.f;
  }
}

static void asm_grad_task(void *p, int64_t r0, int64_t r1) {
  asm_ctx *c = (asm_ctx *)p;
  int64_t S = c->S;
  for (int64_t r = r0; r < r1; r++) {
    const float *y = c->y + r * S, *dy = c->dy + r * S;
    float *dx = c->dx + r * S;
    double s = 0;
    for (int64_t j = 0; j < S; j++) s += (double)dy[j] * y[j];
    float sf = (float)s;
    for (int64_t j = 0; j < S; j++) dx[j] = c->scale * y[j] * (dy[j] - sf);
  }
}

static napi_value js_attn_softmax(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!get_args(env, info, 8, argv)) return NULL;
  asm_ctx c;
  memset(&c, 0, sizeof c);
  c.x = F32(0);
  c.o = F32(1);
  int64_t rows = get_i64(env, argv[2]);
  c.S = get_i64(env, argv[3]);
  c.Tq = get_i64(env, argv[4]);
  c.past = get_i64(env, argv[5]);
  c.causal = (int)get_i64(env, argv[6]);
  c.scale = (float)get_f64(env, argv[7]);
  if (!c.x || !c.o || c.S <= 0 || c.Tq <= 0) return NULL;
  parallel_for(rows, c.S * 4, asm_task, &c);
  return NULL;
}

static napi_value js_attn_softmax_grad(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  asm_ctx c;
  memset(&c, 0, sizeof c);
  c.dy = F32(0);
  c.y = F32(1);
  c.dx = F32(2);
  int64_t rows = get_i64(env, argv[3]);
  c.S = get_i64(env, argv[4]);
  c.scale = (float)get_f64(env, argv[5]);
  if (!c.dy || !c.y || !c.dx || c.S <= 0) return NULL;
  parallel_for(rows, c.S * 3, asm_grad_task, &c);
  return NULL;
}

/* ---- sparse softmax cross entropy, fused: one pass over the logits each way ----
 * ce(x[rows, cols], labels:Int32[rows], nll[rows], lse[rows]): lse = logsumexp of the row,
 * nll = lse - x[label].  ce_grad(x, lse, labels, dy[rows], dx[rows, cols]):
 * dx = exp(x - lse) * dy, minus dy at the label. Labels must lie in [0, cols). */
typedef struct {
  const float *x, *lse, *dy;
  const int32_t *labels;
  float *nll, *lse_out, *dx;
  int64_t cols;
} ce_ctx;

static void ce_task(void *p, int64_t r0, int64_t r1) {
  ce_ctx *c = (ce_ctx *)p;
  int64_t n = c->cols;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = c->x + r * n;
    float m = row_max(x, n, NULL);
    float mm = m == -INFINITY || m != m ? 0.f : m;
    float s[16];
    for (int k = 0; k < 16; k++) s[k] = 0.f;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
      for (int k = 0; k < 16; k++) s[k] += fast_expf(x[j + k] - mm);
    float acc = 0.f;
    for (; j < n; j++) acc += fast_expf(x[j] - mm);
    for (int k = 0; k < 16; k++) acc += s[k];
    float lse = m != m ? m : (float)((double)mm + log((double)acc));
    c->lse_out[r] = lse;
    c->nll[r] = lse - x[c->labels[r]];
  }
}

static void ce_grad_task(void *p, int64_t r0, int64_t r1) {
  ce_ctx *c = (ce_ctx *)p;
  int64_t n = c->cols;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = c->x + r * n;
    float *o = c->dx + r * n;
    float l = c->lse[r], g = c->dy[r];
    for (int64_t j = 0; j < n; j++) o[j] = fast_expf(x[j] - l) * g;
    o[c->labels[r]] -= g;
  }
}

static napi_value js_ce(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  ce_ctx c;
  memset(&c, 0, sizeof c);
  c.x = F32(0);
  c.labels = I32(1);
  c.nll = F32(2);
  c.lse_out = F32(3);
  int64_t rows = get_i64(env, argv[4]);
  c.cols = get_i64(env, argv[5]);
  if (!c.x || !c.labels || !c.nll || !c.lse_out || c.cols <= 0) return NULL;
  parallel_for(rows, c.cols * 3, ce_task, &c);
  return NULL;
}

static napi_value js_ce_grad(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) return NULL;
  ce_ctx c;
  memset(&c, 0, sizeof c);
  c.x = F32(0);
  c.lse = F32(1);
  c.labels = I32(2);
  c.dy = F32(3);
  c.dx = F32(4);
  int64_t rows = get_i64(env, argv[5]);
  c.cols = get_i64(env, argv[6]);
  if (!c.x || !c.lse || !c.labels || !c.dy || !c.dx || c.cols <= 0) return NULL;
  parallel_for(rows, c.cols * 3, ce_grad_task, &c);
  return NULL;
}

/* ---- reductions over the middle axis of [outer, red, inner] ---- */
enum { R_SUM, R_MAX, R_MIN, R_MEAN, R_PROD };
typedef struct {
  int op;
  const float *x;
  float *o;
  int64_t outer, red, inner;
} red_ctx;

static void red_task(void *p, int64_t i0, int64_t i1) {
  red_ctx *c = (red_ctx *)p;
  int64_t red = c->red, inner = c->inner;
  if (inner == 1) {
    for (int64_t i = i0; i < i1; i++) {
      const float *x = c->x + i * red;
      float acc;
      switch (c->op) {
        case R_SUM: case R_MEAN:
          /* 16 partial sums: vectorizes and keeps the error small */
          acc = row_sum(x, red);
          if (c->op == R_MEAN) acc /= (float)red;
          break;
        case R_MAX: acc = row_max(x, red, NULL); break;
        case R_MIN: acc = row_min(x, red); break;
        default: acc = 1.f; for (int64_t j = 0; j < red; j++) acc *= x[j]; break;
      }
      c->o[i] = acc;
    }
    return;
  }
  /* i indexes (outer, inner-chunk) pairs: chunks of 256 columns */
  int64_t chunks = (inner + 255) / 256;
  for (int64_t t = i0; t < i1; t++) {
    int64_t oi = t / chunks, ch = t % chunks;
    int64_t c0 = ch * 256, c1 = c0 + 256 < inner ? c0 + 256 : inner;
    const float *x = c->x + oi * red * inner;
    float *o = c->o + oi * inner;
    float init = c->op == R_MAX ? -INFINITY : c->op == R_MIN ? INFINITY : c->op == R_PROD ? 1.f : 0.f;
    for (int64_t j = c0; j < c1; j++) o[j] = init;
    for (int64_t r = 0; r < red; r++) {
      const float *xr = x + r * inner;
      switch (c->op) {
        case R_SUM: case R_MEAN: for (int64_t j = c0; j < c1; j++) o[j] += xr[j]; break;
        case R_MAX: for (int64_t j = c0; j < c1; j++) { float v = xr[j]; o[j] = (v > o[j] || v != v) ? v : o[j]; } break;
        case R_MIN: for (int64_t j = c0; j < c1; j++) { float v = xr[j]; o[j] = (v < o[j] || v != v) ? v : o[j]; } break;
        default: for (int64_t j = c0; j < c1; j++) o[j] *= xr[j]; break;
      }
    }
    if (c->op == R_MEAN) {
      float inv = 1.0f / (float)red;
      for (int64_t j = c0; j < c1; j++) o[j] *= inv;
    }
  }
}

static napi_value js_reduce(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  red_ctx c;
  c.op = (int)get_i64(env, argv[0]);
  c.x = F32(1);
  c.o = F32(2);
  c.outer = get_i64(env, argv[3]);
  c.red = get_i64(env, argv[4]);
  c.inner = get_i64(env, argv[5]);
  if (!c.x || !c.o) return NULL;
  if (c.inner == 1) parallel_for(c.outer, c.red, red_task, &c);
  else parallel_for(c.outer * ((c.inner + 255) / 256), c.red * 256, red_task, &c);
  return NULL;
}

/* ---- transpose (any 4-byte element type): transpose(x, out, inShape:Int32, perm:Int32) ---- */
typedef struct {
  const uint32_t *x;
  uint32_t *o;
  int rank;
  int64_t oshape[8], istride_of_out[8];
} tr_ctx;

static void tr_task(void *p, int64_t r0, int64_t r1) {
  tr_ctx *c = (tr_ctx *)p;
  int last = c->rank - 1;
  int64_t n = c->oshape[last], s = c->istride_of_out[last];
  for (int64_t r = r0; r < r1; r++) {
    int64_t rem = r, off = 0;
    for (int d = last - 1; d >= 0; d--) {
      int64_t i = rem % c->oshape[d];
      rem /= c->oshape[d];
      off += i * c->istride_of_out[d];
    }
    const uint32_t *x = c->x + off;
    uint32_t *o = c->o + r * n;
    if (s == 1) memcpy(o, x, sizeof(uint32_t) * n);
    else for (int64_t j = 0; j < n; j++) o[j] = x[j * s];
  }
}

/* 2-D blocked transpose for [rows, cols] -> [cols, rows] (batched) */
typedef struct {
  const uint32_t *x;
  uint32_t *o;
  int64_t rows, cols;
} tr2_ctx;
static void tr2_task(void *p, int64_t t0, int64_t t1) {
  tr2_ctx *c = (tr2_ctx *)p;
  const int B = 32;
  int64_t rb = (c->rows + B - 1) / B;
  int64_t mat = c->rows * c->cols;
  int64_t per = rb * ((c->cols + B - 1) / B);
  for (int64_t t = t0; t < t1; t++) {
    int64_t bi = t / per, rem = t % per;
    int64_t i0 = (rem % rb) * B, j0 = (rem / rb) * B;
    const uint32_t *x = c->x + bi * mat;
    uint32_t *o = c->o + bi * mat;
    int64_t i1 = i0 + B < c->rows ? i0 + B : c->rows, j1 = j0 + B < c->cols ? j0 + B : c->cols;
    for (int64_t j = j0; j < j1; j++)
      for (int64_t i = i0; i < i1; i++) o[j * c->rows + i] = x[i * c->cols + j];
  }
}

static napi_value js_transpose(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  bool is;
  napi_typedarray_type t;
  size_t n;
  void *xd, *od;
  napi_value ab;
  size_t off;
  napi_is_typedarray(env, argv[0], &is);
  if (!is) { napi_throw_type_error(env, "ADAPTORKIT_NATIVE", "expected a TypedArray"); return NULL; }
  napi_get_typedarray_info(env, argv[0], &t, &n, &xd, &ab, &off);
  napi_get_typedarray_info(env, argv[1], &t, &n, &od, &ab, &off);
  int64_t shape[8], perm[8];
  int rank;
  if (!read_dims(env, argv[2], shape, &rank) || !read_dims(env, argv[3], perm, NULL)) return NULL;
  if (n == 0 || rank == 0) return NULL;
  int64_t istr[8];
  istr[rank - 1] = 1;
  for (int d = rank - 2; d >= 0; d--) istr[d] = istr[d + 1] * shape[d + 1];
  /* batched 2-D swap of the last two axes */
  int is2d = rank >= 2 && perm[rank - 1] == rank - 2 && perm[rank - 2] == rank - 1;
  for (int d = 0; d < rank - 2 && is2d; d++) is2d = perm[d] == d;
  if (is2d) {
    tr2_ctx c2 = {(const uint32_t *)xd, (uint32_t *)od, shape[rank - 2], shape[rank - 1]};
    int64_t batch = (int64_t)n / (c2.rows * c2.cols);
    int64_t tiles = batch * ((c2.rows + 31) / 32) * ((c2.cols + 31) / 32);
    parallel_for(tiles, 1024, tr2_task, &c2);
    return NULL;
  }
  tr_ctx c;
  c.x = (const uint32_t *)xd;
  c.o = (uint32_t *)od;
  c.rank = rank;
  for (int d = 0; d < rank; d++) {
    c.oshape[d] = shape[perm[d]];
    c.istride_of_out[d] = istr[perm[d]];
  }
  int64_t rows = (int64_t)n / c.oshape[rank - 1];
  parallel_for(rows, c.oshape[rank - 1], tr_task, &c);
  return NULL;
}

/* ---- gather rows: gather(x, idx:Int32, out, outer, axisDim, inner) ---- */
static napi_value js_gather(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  size_t nidx;
  const uint32_t *x = (const uint32_t *)F32(0);
  const int32_t *idx = (const int32_t *)typed_data(env, argv[1], &nidx, napi_int32_array);
  uint32_t *o = (uint32_t *)F32(2);
  int64_t outer = get_i64(env, argv[3]), axis = get_i64(env, argv[4]), inner = get_i64(env, argv[5]);
  if (!x || !idx || !o) return NULL;
  for (int64_t a = 0; a < outer; a++)
    for (size_t i = 0; i < nidx; i++) {
      int32_t k = idx[i];
      uint32_t *dst = o + (a * (int64_t)nidx + i) * inner;
      if (k < 0 || k >= axis) memset(dst, 0, sizeof(uint32_t) * inner);
      else memcpy(dst, x + (a * axis + k) * inner, sizeof(uint32_t) * inner);
    }
  return NULL;
}

/* ---- unsorted segment sum: segsum(x, ids:Int32, out(zeroed), inner, numSegments) ---- */
static napi_value js_segsum(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  size_t nid;
  const float *x = F32(0);
  const int32_t *ids = (const int32_t *)typed_data(env, argv[1], &nid, napi_int32_array);
  float *o = F32(2);
  int64_t inner = get_i64(env, argv[3]), nseg = get_i64(env, argv[4]);
  if (!x || !ids || !o) return NULL;
  for (size_t i = 0; i < nid; i++) {
    int32_t s = ids[i];
    if (s < 0 || s >= nseg) continue;
    const float *src = x + i * inner;
    float *dst = o + s * inner;
    for (int64_t j = 0; j < inner; j++) dst[j] += src[j];
  }
  return NULL;
}

/* ---- fused AdamW update, in place on p, m, v ----
 * adamw(p, g, m, v, lr, beta1, beta2, eps, weightDecay, bc1, bc2): decoupled weight decay. */
typedef struct {
  float *p, *m, *v;
  const float *g;
  float lr, b1, b2, eps, wd, bc1, bc2;
} adam_ctx;
static void adam_task(void *q, int64_t b, int64_t e) {
  adam_ctx *c = (adam_ctx *)q;
  for (int64_t i = b; i < e; i++) {
    float g = c->g[i];
    float m = c->b1 * c->m[i] + (1.f - c->b1) * g;
    float v = c->b2 * c->v[i] + (1.f - c->b2) * g * g;
    c->m[i] = m;
    c->v[i] = v;
    float mh = m / c->bc1, vh = v / c->bc2;
    c->p[i] = c->p[i] - c->lr * (mh / (sqrtf(vh) + c->eps) + c->wd * c->p[i]);
  }
}
static napi_value js_adamw(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  if (!get_args(env, info, 11, argv)) return NULL;
  size_t n;
  adam_ctx c;
  c.p = (float *)typed_data(env, argv[0], &n, napi_float32_array);
  c.g = F32(1);
  c.m = F32(2);
  c.v = F32(3);
  c.lr = (float)get_f64(env, argv[4]);
  c.b1 = (float)get_f64(env, argv[5]);
  c.b2 = (float)get_f64(env, argv[6]);
  c.eps = (float)get_f64(env, argv[7]);
  c.wd = (float)get_f64(env, argv[8]);
  c.bc1 = (float)get_f64(env, argv[9]);
  c.bc2 = (float)get_f64(env, argv[10]);
  if (!c.p || !c.g || !c.m || !c.v) return NULL;
  parallel_for((int64_t)n, 4, adam_task, &c);
  return NULL;
}

/* ---- AdamW into new arrays, the same float32 steps as @adaptorkit/core's composed update ----
 * adamwOut(p, g, m, v, pOut, mOut, vOut, b1, 1-b1, b2, 1-b2, sqrt(bc2), eps, 1-lr*wd, lr/bc1):
 * m' = m*b1 + g*(1-b1); v' = v*b2 + g*g*(1-b2); p' = p*decay - m' / (sqrt(v')/sqrt(bc2) + eps) * step */
typedef struct {
  const float *p, *g, *m, *v;
  float *po, *mo, *vo;
  float b1, omb1, b2, omb2, sbc2, eps, decay, step;
} adamo_ctx;
static void adamo_task(void *q, int64_t b, int64_t e) {
  adamo_ctx *c = (adamo_ctx *)q;
  for (int64_t i = b; i < e; i++) {
    float g = c->g[i];
    float m = c->m[i] * c->b1 + g * c->omb1;
    float v = c->v[i] * c->b2 + (g * g) * c->omb2;
    float denom = sqrtf(v) / c->sbc2 + c->eps;
    c->mo[i] = m;
    c->vo[i] = v;
    c->po[i] = c->p[i] * c->decay - (m / denom) * c->step;
  }
}
static napi_value js_adamw_out(napi_env env, napi_callback_info info) {
  napi_value argv[15];
  if (!get_args(env, info, 15, argv)) return NULL;
  size_t n;
  adamo_ctx c;
  c.p = (const float *)typed_data(env, argv[0], &n, napi_float32_array);
  c.g = F32(1);
  c.m = F32(2);
  c.v = F32(3);
  c.po = F32(4);
  c.mo = F32(5);
  c.vo = F32(6);
  c.b1 = (float)get_f64(env, argv[7]);
  c.omb1 = (float)get_f64(env, argv[8]);
  c.b2 = (float)get_f64(env, argv[9]);
  c.omb2 = (float)get_f64(env, argv[10]);
  c.sbc2 = (float)get_f64(env, argv[11]);
  c.eps = (float)get_f64(env, argv[12]);
  c.decay = (float)get_f64(env, argv[13]);
  c.step = (float)get_f64(env, argv[14]);
  if (!c.p || !c.g || !c.m || !c.v || !c.po || !c.mo || !c.vo) return NULL;
  parallel_for((int64_t)n, 8, adamo_task, &c);
  return NULL;
}

/* ---- box copy (slice / concat / pad / split), 4-byte elements ----
 * copybox(src, srcShape, srcBegin, dst, dstShape, dstBegin, size): copies the box of extent
 * `size` at srcBegin in src into dst at dstBegin. All Int32Arrays of the same rank <= 8. */
typedef struct {
  const uint32_t *src;
  uint32_t *dst;
  int rank;
  int64_t size[8], sstr[8], dstr[8];
} box_ctx;

static void box_task(void *p, int64_t r0, int64_t r1) {
  box_ctx *c = (box_ctx *)p;
  int last = c->rank - 1;
  int64_t n = c->size[last];
  for (int64_t r = r0; r < r1; r++) {
    int64_t rem = r, so = 0, d_o = 0;
    for (int d = last - 1; d >= 0; d--) {
      int64_t i = rem % c->size[d];
      rem /= c->size[d];
      so += i * c->sstr[d];
      d_o += i * c->dstr[d];
    }
    memcpy(c->dst + d_o, c->src + so, sizeof(uint32_t) * n);
  }
}

static napi_value js_copybox(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) return NULL;
  napi_typedarray_type t;
  size_t n;
  void *sd, *dd;
  napi_value ab;
  size_t off;
  bool is1, is2;
  napi_is_typedarray(env, argv[0], &is1);
  napi_is_typedarray(env, argv[3], &is2);
  if (!is1 || !is2) { napi_throw_type_error(env, "ADAPTORKIT_NATIVE", "expected TypedArrays"); return NULL; }
  napi_get_typedarray_info(env, argv[0], &t, &n, &sd, &ab, &off);
  napi_get_typedarray_info(env, argv[3], &t, &n, &dd, &ab, &off);
  int64_t sshape[8], sbeg[8], dshape[8], dbeg[8], size[8];
  int rank;
  if (!read_dims(env, argv[1], sshape, &rank) || !read_dims(env, argv[2], sbeg, NULL) || !read_dims(env, argv[4], dshape, NULL) ||
      !read_dims(env, argv[5], dbeg, NULL) || !read_dims(env, argv[6], size, NULL))
    return NULL;
  int64_t total = 1;
  for (int d = 0; d < rank; d++) total *= size[d];
  if (total == 0) return NULL;
  if (rank == 0) { ((uint32_t *)dd)[0] = ((const uint32_t *)sd)[0]; return NULL; }
  int64_t ss[8], ds[8];
  ss[rank - 1] = ds[rank - 1] = 1;
  for (int d = rank - 2; d >= 0; d--) { ss[d] = ss[d + 1] * sshape[d + 1]; ds[d] = ds[d + 1] * dshape[d + 1]; }
  int64_t so = 0, d_o = 0;
  for (int d = 0; d < rank; d++) { so += sbeg[d] * ss[d]; d_o += dbeg[d] * ds[d]; }
  /* merge trailing dims copied whole in both (contiguous runs) */
  box_ctx c;
  c.src = (const uint32_t *)sd + so;
  c.dst = (uint32_t *)dd + d_o;
  int k = 0;
  for (int d = 0; d < rank; d++) {
    if (k > 0 && size[d] == sshape[d] && size[d] == dshape[d] && c.sstr[k - 1] == ss[d] * size[d] &&
        c.dstr[k - 1] == ds[d] * size[d]) {
      c.size[k - 1] *= size[d];
      c.sstr[k - 1] = ss[d];
      c.dstr[k - 1] = ds[d];
    } else {
      c.size[k] = size[d];
      c.sstr[k] = ss[d];
      c.dstr[k] = ds[d];
      k++;
    }
  }
  c.rank = k;
  int64_t rows = total / c.size[k - 1];
  parallel_for(rows, c.size[k - 1], box_task, &c);
  return NULL;
}

/* ---- fill: fill(out, value) for float32 ---- */
static napi_value js_fill(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  size_t n;
  float *o = (float *)typed_data(env, argv[0], &n, napi_float32_array);
  float v = (float)get_f64(env, argv[1]);
  if (!o) return NULL;
  for (size_t i = 0; i < n; i++) o[i] = v;
  return NULL;
}

/* ---- configuration ---- */
static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int n = (int)get_i64(env, argv[0]);
  if (n < 1) n = 1;
  if (!g_pool_started) pool_start(n);
  else g_threads = n < g_workers_started ? n : g_workers_started;
  return NULL;
}

static napi_value js_info(napi_env env, napi_callback_info info) {
  (void)info;
  char buf[512];
  snprintf(buf, sizeof buf, "OpenBLAS %s (%s), %d threads", openblas_get_config(), openblas_get_corename(), g_threads);
  napi_value s;
  NAPI_CALL(env, napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &s));
  return s;
}

static napi_value js_flushes(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  NAPI_CALL(env, napi_get_boolean(env, g_flush != 0, &v));
  return v;
}

static napi_value js_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  NAPI_CALL(env, napi_create_int32(env, g_threads, &v));
  return v;
}

/* Every exported function runs through here: denormals flushed for the call's duration. */
static napi_value with_fp_mode(napi_env env, napi_callback_info info) {
  void *data = NULL;
  if (napi_get_cb_info(env, info, NULL, NULL, NULL, &data) != napi_ok || !data) return NULL;
  fpmode_t m = fp_flush_on();
  napi_value r = ((napi_callback)data)(env, info);
  fp_restore(m);
  return r;
}

#include "bf16.c" /* bf16-stored frozen weights: bf16mm, bf16gather */

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  const char *dn = getenv("ADAPTORKIT_NATIVE_DENORMALS");
  g_flush = !(dn && strcmp(dn, "keep") == 0);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  const char *envt = getenv("ADAPTORKIT_NATIVE_THREADS");
  int threads = envt && atoi(envt) > 0 ? atoi(envt) : (cores > 0 ? (int)cores : 1);
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  openblas_set_num_threads(1);
  pool_start(threads);
  struct { const char *name; napi_callback fn; } fns[] = {
      {"bmm", js_bmm},         {"binary", js_binary},   {"unary", js_unary},     {"softmax", js_softmax},
      {"reduce", js_reduce},   {"transpose", js_transpose}, {"gather", js_gather}, {"segsum", js_segsum},
      {"adamw", js_adamw},     {"setThreads", js_set_threads}, {"info", js_info}, {"threads", js_threads},
      {"copybox", js_copybox}, {"fill", js_fill},     {"ce", js_ce},           {"ceGrad", js_ce_grad},
      {"adamwOut", js_adamw_out}, {"flushesDenormals", js_flushes},
      {"rmsnorm", js_rmsnorm}, {"rmsnormGrad", js_rmsnorm_grad}, {"layernorm", js_layernorm}, {"layernormGrad", js_layernorm_grad}, {"swiglu", js_swiglu}, {"swigluGrad", js_swiglu_grad},
      {"rope", js_rope}, {"attnSoftmax", js_attn_softmax}, {"attnSoftmaxGrad", js_attn_softmax_grad},
      {"bf16mm", js_bf16mm}, {"bf16gather", js_bf16gather},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, with_fp_mode, (void *)fns[i].fn, &f) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, fns[i].name, f) != napi_ok) return NULL;
  }
  return exports;
}
