"""PyTorch twin of experiments/backend-native/model.mjs: the same LLaMA-style model, shapes, adapters and AdamW.

usage: python3 torch_bench.py MODE STEPS WARMUP [THREADS] [DEVICE]
  (MODE: adapter | full; THREADS default 2; DEVICE cpu (default) or cuda, timed with synchronize)
Prints one JSON line: {"mode", "step_ms": [...], "peak_rss_mb", "torch", "threads", "blas"}.
Run with torch threads = 2 (set here) and, on Debian, LD_LIBRARY_PATH pointing at an optimized
OpenBLAS (bench/run.mjs does this).
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, D, F_, L, H, B, T, R = 4096, 256, 704, 4, 4, 8, 128, 64
HD = D // H


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(t, hd, theta=10000.0):
    inv = 1.0 / theta ** (torch.arange(0, hd, 2).float() / hd)
    ang = torch.outer(torch.arange(t).float(), inv)
    emb = torch.cat([ang, ang], -1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, -1)
    return torch.cat([-x2, x1], -1)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(D, D, bias=False)
        self.k = nn.Linear(D, D, bias=False)
        self.v = nn.Linear(D, D, bias=False)
        self.o = nn.Linear(D, D, bias=False)
        self.gate = nn.Linear(D, F_, bias=False)
        self.up = nn.Linear(D, F_, bias=False)
        self.down = nn.Linear(F_, D, bias=False)
        self.n1 = RMSNorm(D)
        self.n2 = RMSNorm(D)
        self.adapter = None

    def forward(self, x, cos, sin, mask):
        a = self.n1(x)
        split = lambda t: t.view(B, T, H, HD).transpose(1, 2)  # [B, H, T, hd]
        q, k, v = split(self.q(a)), split(self.k(a)), split(self.v(a))
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        s = (q @ k.transpose(-1, -2)) / math.sqrt(HD) + mask
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
        h = x + self.o(o)
        m = self.n2(h)
        out = h + self.down(F.silu(self.gate(m)) * self.up(m))
        if self.adapter is not None:
            out = self.adapter(out)
        return out


class Adapter(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Linear(D, R)
        self.up = nn.Linear(R, D)

    def forward(self, x):
        return x + self.up(F.silu(self.down(x)))


class LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.layers = nn.ModuleList([Layer() for _ in range(L)])
        self.norm = RMSNorm(D)
        self.head = nn.Linear(D, V, bias=False)

    def forward(self, ids, cos, sin, mask):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.head(self.norm(x))


def main():
    mode, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    device = torch.device(sys.argv[5] if len(sys.argv) > 5 else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = LM()
    if mode == "adapter":
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in model.layers:
            layer.adapter = Adapter()
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    ids = torch.randint(0, V, (B, T)).to(device)
    cos, sin = (t.to(device) for t in rope_tables(T, HD))
    mask = torch.full((T, T), -1e9).triu(1).to(device)
    times = []
    cpu = []  # process CPU time per step (all threads)
    for i in range(warmup + steps):
        sync()
        c0 = time.process_time()
        t0 = time.perf_counter()
        logits = model(ids, cos, sin, mask)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    cfg = torch.__config__.show()
    blas = "openblas" if "openblas" in cfg.lower() else "unknown"
    print(json.dumps({
        "mode": mode,
        "step_ms": times,
        "cpu_ms": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "loss": float(loss),
        "blas": blas,
        "trainable": sum(p.numel() for p in params),
    }))


if __name__ == "__main__":
    main()
