/* The fused transformer kernels no tfjs op has: RMS / layer norm, SwiGLU, RoPE, attention softmax (each with its gradient). */
#include "common.h"

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

napi_value js_rmsnorm(napi_env env, napi_callback_info info) { return norm_call(env, info, rms_task, 2); }
napi_value js_rmsnorm_grad(napi_env env, napi_callback_info info) { return norm_grad_call(env, info, rms_grad_task); }
napi_value js_layernorm(napi_env env, napi_callback_info info) { return norm_call(env, info, ln_task, 3); }
napi_value js_layernorm_grad(napi_env env, napi_callback_info info) { return norm_grad_call(env, info, ln_grad_task); }

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

napi_value js_swiglu(napi_env env, napi_callback_info info) {
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

napi_value js_swiglu_grad(napi_env env, napi_callback_info info) {
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

napi_value js_rope(napi_env env, napi_callback_info info) {
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

napi_value js_attn_softmax(napi_env env, napi_callback_info info) {
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

napi_value js_attn_softmax_grad(napi_env env, napi_callback_info info) {
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
