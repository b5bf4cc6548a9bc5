/* Matrix products through OpenBLAS (cblas_sgemm), batched and split over the pool. */
#include "common.h"

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
napi_value js_bmm(napi_env env, napi_callback_info info) {
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
