/*
 * bf16-stored frozen weights (its own unit: the thread pool and argument helpers come from common.h).
 *
 * A frozen weight W [R, C] is kept as its checkpoint's bf16 bits (two per int32 element of a tfjs
 * int32 tensor, little-endian: element i is the low half of int32 i/2 when i is even). Products
 * convert one block of W to float32 at a time (bf16 -> f32 is exact: the bits shifted left by 16)
 * into a per-task buffer and hand it to cblas_sgemm, so the whole weight never exists in float32:
 *   bf16mm(mode 0, x [N, C], W, y [N, R]):  y = x W^T   (a Linear's forward, HF layout [out, in])
 *   bf16mm(mode 1, x [N, R], W, y [N, C]):  y = x W     (its gradient w.r.t. the input)
 *   bf16gather(W, ids [N], y [N, C]):       y[i] = W[ids[i]]   (an Embedding's rows)
 * Blocks are split over the addon's pool; OpenBLAS itself stays single-threaded (addon.c).
 */
#include "common.h"

/* Floats per conversion buffer: ~1 MiB, so a block stays in L2 while sgemm packs it. */
#define BF16_BLOCK_FLOATS (1 << 18)
/* Fewest output rows (columns in mode 1) per block. sgemm repacks x for every block, so thin
 * blocks of a wide inner dim (an MLP's 8640-11008) paid for that again and again: with 16 the
 * LLaMA 1B/3B/7B projections took 1.58x float32's time, with 256 1.06-1.16x
 * (experiments/backend-native/bf16-matmul.mjs over those shapes, 2 threads; the buffer is then
 * up to 256 x inner floats, 11 MiB at 11008). */
#define BF16_MIN_ROWS 256

static inline void bf16_to_f32_row(const uint16_t *src, float *dst, int64_t n) {
  uint32_t *d = (uint32_t *)dst;
  for (int64_t i = 0; i < n; i++) d[i] = (uint32_t)src[i] << 16;
}

typedef struct {
  int mode;
  int64_t N, R, C, blk;
  const float *x;
  const uint16_t *w;
  float *y;
  int failed;
} bf16mm_ctx;

static void bf16mm_task(void *vc, int64_t b, int64_t e) {
  bf16mm_ctx *c = (bf16mm_ctx *)vc;
  int64_t blk = c->blk;
  float *buf = (float *)malloc((size_t)blk * (size_t)(c->mode == 0 ? c->C : c->R) * sizeof(float));
  if (!buf) {
    c->failed = 1;
    return;
  }
  for (int64_t k = b; k < e; k++) {
    if (c->mode == 0) {
      /* rows r0..r1 of W -> buf [rb, C]; y[:, r0:r1] = x [N, C] * buf^T */
      int64_t r0 = k * blk, r1 = r0 + blk < c->R ? r0 + blk : c->R, rb = r1 - r0;
      bf16_to_f32_row(c->w + r0 * c->C, buf, rb * c->C);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->N, (int)rb, (int)c->C, 1.0f, c->x, (int)c->C, buf, (int)c->C, 0.0f, c->y + r0,
                  (int)c->R);
    } else {
      /* columns c0..c1 of W -> buf [R, cb]; y[:, c0:c1] = x [N, R] * buf */
      int64_t c0 = k * blk, c1 = c0 + blk < c->C ? c0 + blk : c->C, cb = c1 - c0;
      for (int64_t r = 0; r < c->R; r++) bf16_to_f32_row(c->w + r * c->C + c0, buf + r * cb, cb);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->N, (int)cb, (int)c->R, 1.0f, c->x, (int)c->R, buf, (int)cb, 0.0f, c->y + c0,
                  (int)c->C);
    }
  }
  free(buf);
}

/* bf16mm(mode, N, R, C, x: Float32Array, w: Int32Array (packed bf16 [R, C]), y: Float32Array) */
napi_value js_bf16mm(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) return NULL;
  bf16mm_ctx c;
  memset(&c, 0, sizeof c);
  c.mode = (int)get_i64(env, argv[0]);
  c.N = get_i64(env, argv[1]);
  c.R = get_i64(env, argv[2]);
  c.C = get_i64(env, argv[3]);
  size_t nx = 0, nw = 0, ny = 0;
  c.x = (const float *)typed_data(env, argv[4], &nx, napi_float32_array);
  if (!c.x) return NULL;
  c.w = (const uint16_t *)typed_data(env, argv[5], &nw, napi_int32_array);
  if (!c.w) return NULL;
  c.y = (float *)typed_data(env, argv[6], &ny, napi_float32_array);
  if (!c.y) return NULL;
  int64_t inner = c.mode == 0 ? c.C : c.R, outer = c.mode == 0 ? c.R : c.C;
  if (c.N < 0 || c.R < 0 || c.C < 0 || (int64_t)nw * 2 < c.R * c.C || (int64_t)nx < c.N * inner || (int64_t)ny < c.N * outer) {
    napi_throw_range_error(env, "ADAPTORKIT_NATIVE", "bf16mm: array sizes do not match N, R, C");
    return NULL;
  }
  if (c.N == 0 || outer == 0) return NULL;
  if (inner == 0) {
    memset(c.y, 0, (size_t)(c.N * outer) * sizeof(float));
    return NULL;
  }
  /* block of the output dim: ~BF16_BLOCK_FLOATS floats, at least 16, at most an even share */
  int64_t blk = BF16_BLOCK_FLOATS / inner;
  if (blk < BF16_MIN_ROWS) blk = BF16_MIN_ROWS;
  int64_t share = (outer + g_threads - 1) / g_threads;
  if (blk > share) blk = share < 16 ? (outer < 16 ? outer : 16) : share;
  c.blk = blk;
  int64_t blocks = (outer + blk - 1) / blk;
  parallel_for(blocks, c.N * inner * blk, bf16mm_task, &c);
  if (c.failed) napi_throw_error(env, "ADAPTORKIT_NATIVE", "bf16mm: out of memory for a conversion block");
  return NULL;
}

typedef struct {
  const uint16_t *w;
  const int32_t *ids;
  float *y;
  int64_t R, C;
} bf16gather_ctx;

static void bf16gather_task(void *vc, int64_t b, int64_t e) {
  bf16gather_ctx *c = (bf16gather_ctx *)vc;
  for (int64_t i = b; i < e; i++) {
    int64_t r = c->ids[i];
    if (r < 0 || r >= c->R) memset(c->y + i * c->C, 0, (size_t)c->C * sizeof(float)); /* checked in JS; never read out of bounds */
    else bf16_to_f32_row(c->w + r * c->C, c->y + i * c->C, c->C);
  }
}

/* bf16gather(R, C, w: Int32Array (packed bf16 [R, C]), ids: Int32Array [N], y: Float32Array [N, C]) */
napi_value js_bf16gather(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  bf16gather_ctx c;
  c.R = get_i64(env, argv[0]);
  c.C = get_i64(env, argv[1]);
  size_t nw = 0, ni = 0, ny = 0;
  c.w = (const uint16_t *)typed_data(env, argv[2], &nw, napi_int32_array);
  if (!c.w) return NULL;
  c.ids = (const int32_t *)typed_data(env, argv[3], &ni, napi_int32_array);
  if (!c.ids) return NULL;
  c.y = (float *)typed_data(env, argv[4], &ny, napi_float32_array);
  if (!c.y) return NULL;
  if ((int64_t)nw * 2 < c.R * c.C || (int64_t)ny < (int64_t)ni * c.C) {
    napi_throw_range_error(env, "ADAPTORKIT_NATIVE", "bf16gather: array sizes do not match R, C and the ids");
    return NULL;
  }
  parallel_for((int64_t)ni, c.C, bf16gather_task, &c);
  return NULL;
}
