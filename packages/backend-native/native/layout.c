/* Layout kernels: transpose, gather, unsorted segment sum, box copy (slice / concat / pad / split), fill. */
#include "common.h"

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

napi_value js_transpose(napi_env env, napi_callback_info info) {
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
napi_value js_gather(napi_env env, napi_callback_info info) {
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
napi_value js_segsum(napi_env env, napi_callback_info info) {
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

napi_value js_copybox(napi_env env, napi_callback_info info) {
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
napi_value js_fill(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  size_t n;
  float *o = (float *)typed_data(env, argv[0], &n, napi_float32_array);
  float v = (float)get_f64(env, argv[1]);
  if (!o) return NULL;
  for (size_t i = 0; i < n; i++) o[i] = v;
  return NULL;
}
