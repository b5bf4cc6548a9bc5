/*
 * adaptorkit native kernels: an N-API addon that works in place on the TypedArrays a tfjs
 * MathBackendCPU holds (zero copy). MatMul goes to OpenBLAS (cblas_sgemm); elementwise ops,
 * softmax, reductions, transpose, gather and segment sums are plain loops that GCC vectorizes.
 * Large loops are split over a small pthread pool (one worker per extra core).
 *
 * One file per kernel family (gemm.c, elementwise.c, fused.c, train.c, layout.c), the thread pool (pool.c),
 * shared declarations in common.h; this file holds the N-API helpers, configuration and the module
 * init. The cblas prototypes are declared in common.h so that only the OpenBLAS shared library is needed
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

#include "common.h"

int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "ADAPTORKIT_NATIVE", "too few arguments to a native kernel");
    return 0;
  }
  return 1;
}

void *typed_data(napi_env env, napi_value v, size_t *len, napi_typedarray_type want) {
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

int64_t get_i64(napi_env env, napi_value v) {
  int64_t x = 0;
  napi_get_value_int64(env, v, &x);
  return x;
}
double get_f64(napi_env env, napi_value v) {
  double x = 0;
  napi_get_value_double(env, v, &x);
  return x;
}

int read_dims(napi_env env, napi_value v, int64_t *dst, int *rank) {
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

