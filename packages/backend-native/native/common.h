/*
 * Shared by the addon's source files (one per kernel family): system headers, the OpenBLAS ABI, the
 * denormal mode, the thread pool, the vectorizable exp and row reductions (static inline, so each
 * kernel file inlines them), the N-API helpers and every exported kernel's entry point.
 */
#ifndef ADAPTORKIT_NATIVE_COMMON_H
#define ADAPTORKIT_NATIVE_COMMON_H
#include <node_api.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdatomic.h>
#include <time.h>

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
 * frozen LM (experiments/backend-native/micro.mjs: a weight-gradient product with 0.2% denormals, 3x slower). Like
 * TensorFlow's CPU runtime, every kernel here runs with denormals flushed to zero (inputs read as
 * zero, results below 2^-126 written as zero). The mode is set on entry to each addon call and
 * restored on exit, so JavaScript's own (IEEE) arithmetic on the main thread is untouched; pool
 * workers keep it on. ADAPTORKIT_NATIVE_DENORMALS=keep turns it off (gradual underflow, as the
 * tfjs cpu backend computes). */
extern int g_flush; /* 1: flush denormals (pool.c) */
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

/* ---- the thread pool (pool.c) ---- */
typedef void (*task_fn)(void *ctx, int64_t begin, int64_t end);
#define MAX_THREADS 16
/* Below this much work (elements x cost) a loop runs on the calling thread only. */
#define PAR_MIN 16384
extern int g_threads;
extern int g_pool_started;
extern int g_workers_started;
void pool_start(int threads);
/* fn(ctx, begin, end) over [0, n), split over the pool when n * cost_per_item is large enough. */
void parallel_for(int64_t n, int64_t cost_per_item, task_fn fn, void *ctx);

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

/* ---- N-API helpers ---- */
#define NAPI_CALL(env, call)                                            \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error((env), "ADAPTORKIT_NATIVE", "N-API call failed: " #call); \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
void *typed_data(napi_env env, napi_value v, size_t *len, napi_typedarray_type want);
int64_t get_i64(napi_env env, napi_value v);
double get_f64(napi_env env, napi_value v);
int read_dims(napi_env env, napi_value v, int64_t *dst, int *rank);

#define F32(i) ((float *)typed_data(env, argv[i], NULL, napi_float32_array))
#define I32(i) ((int32_t *)typed_data(env, argv[i], NULL, napi_int32_array))

/* ---- kernel entry points (one file per family) ---- */
napi_value js_bmm(napi_env env, napi_callback_info info);
napi_value js_bf16mm(napi_env env, napi_callback_info info);     /* bf16.c */
napi_value js_bf16gather(napi_env env, napi_callback_info info); /* bf16.c */
napi_value js_binary(napi_env env, napi_callback_info info);
napi_value js_unary(napi_env env, napi_callback_info info);
napi_value js_softmax(napi_env env, napi_callback_info info);
napi_value js_rmsnorm(napi_env env, napi_callback_info info);
napi_value js_rmsnorm_grad(napi_env env, napi_callback_info info);
napi_value js_layernorm(napi_env env, napi_callback_info info);
napi_value js_layernorm_grad(napi_env env, napi_callback_info info);
napi_value js_swiglu(napi_env env, napi_callback_info info);
napi_value js_swiglu_grad(napi_env env, napi_callback_info info);
napi_value js_rope(napi_env env, napi_callback_info info);
napi_value js_attn_softmax(napi_env env, napi_callback_info info);
napi_value js_attn_softmax_grad(napi_env env, napi_callback_info info);
napi_value js_ce(napi_env env, napi_callback_info info);
napi_value js_ce_grad(napi_env env, napi_callback_info info);
napi_value js_reduce(napi_env env, napi_callback_info info);
napi_value js_transpose(napi_env env, napi_callback_info info);
napi_value js_gather(napi_env env, napi_callback_info info);
napi_value js_segsum(napi_env env, napi_callback_info info);
napi_value js_adamw(napi_env env, napi_callback_info info);
napi_value js_adamw_out(napi_env env, napi_callback_info info);
napi_value js_copybox(napi_env env, napi_callback_info info);
napi_value js_fill(napi_env env, napi_callback_info info);

#endif
