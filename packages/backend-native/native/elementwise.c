/* Elementwise kernels (binary with broadcasting, unary), softmax over the last axis, reductions. */
#include "common.h"

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


napi_value js_binary(napi_env env, napi_callback_info info) {
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

napi_value js_unary(napi_env env, napi_callback_info info) {
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

napi_value js_softmax(napi_env env, napi_callback_info info) {
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

napi_value js_reduce(napi_env env, napi_callback_info info) {
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
