{
  "targets": [
    {
      "target_name": "adaptorkit_native",
      "sources": ["native/addon.c", "native/pool.c", "native/gemm.c", "native/elementwise.c", "native/fused.c", "native/train.c", "native/layout.c", "native/bf16.c"],
      "cflags": ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wno-unused-parameter", "-Werror=implicit-function-declaration"],
      "cflags_c": ["-std=gnu11"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["<!(node scripts/find-openblas.mjs)", "-Wl,-rpath,<!(node scripts/find-openblas.mjs --dir)", "-lpthread", "-lm"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3"] }
    }
  ]
}
