/* The training kernels no tfjs op has: sparse softmax cross entropy (and its gradient), the AdamW update. */
#include "common.h"

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

napi_value js_ce(napi_env env, napi_callback_info info) {
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

napi_value js_ce_grad(napi_env env, napi_callback_info info) {
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
napi_value js_adamw(napi_env env, napi_callback_info info) {
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
napi_value js_adamw_out(napi_env env, napi_callback_info info) {
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
