"""PyTorch twin of experiments/backend-native/bf16-scale.mjs (LM part): the same LLaMA-shaped checkpoint kept as bf16
(frozen; each product upcasts its weight to float32, as adaptorkit's kernel does block by block),
float32 MMA-style adapters on every layer's attention input (down d->8 with dropout, a 2-way router,
2 grouped up-projections 8->d), AdamW, batch 1 x SEQ, optional per-layer activation checkpointing.

usage: /usr/bin/python3 torch_bf16_scale.py CKPT_DIR STEPS SEQ RECOMPUTE(layers|none) THREADS
Prints one JSON line: {"who": "pytorch", "stepS": [...], "losses": [...], "peakRssGiB", "torch"}.
The vision tower is not modelled: compare it with the --no-vision adaptorkit run.
"""
import json
import math
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

ckpt, steps, seq, recompute, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = json.load(open(f"{ckpt}/config.json"))
D, I, L, H, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["vocab_size"]
HD = D // H

f = open(f"{ckpt}/model.safetensors", "rb")
hlen = struct.unpack("<Q", f.read(8))[0]
header = json.loads(f.read(hlen))
base = 8 + hlen


def load(name):
    info = header[name]
    b, e = info["data_offsets"]
    f.seek(base + b)
    a = np.frombuffer(f.read(e - b), dtype=np.int16).copy()
    return torch.from_numpy(a).view(torch.bfloat16).reshape(info["shape"])


class Frozen(nn.Module):
    def __init__(self, name):
        super().__init__()
        self.register_buffer("w", load(name))  # bf16 [out, in], never trained

    def forward(self, x):
        return F.linear(x, self.w.float())


class RMSNorm(nn.Module):
    def __init__(self, name):
        super().__init__()
        self.register_buffer("w", load(name).float())

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.w


class Adapter(nn.Module):
    def __init__(self, r=8, n=2, g=2, temp=10.0):
        super().__init__()
        self.down = nn.Linear(D, r)
        self.router = nn.Linear(D, n)
        self.ups = nn.ModuleList([nn.Conv1d(r, D, 1, groups=g) for _ in range(n)])
        self.temp = temp

    def forward(self, z):
        h = F.dropout(self.down(z), 0.1, self.training)  # [B, T, r]
        w = torch.softmax(self.router(z[:, :1]) / self.temp, -1)  # [B, 1, N]
        out = z
        for i, up in enumerate(self.ups):
            out = out + w[..., i : i + 1] * up(h.transpose(1, 2)).transpose(1, 2)
        return out


def rope_tables(T):
    inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
    ang = torch.outer(torch.arange(T).float(), inv)
    ang = torch.cat([ang, ang], -1)
    return ang.cos(), ang.sin()


def rot(x, cos, sin):
    x1, x2 = x[..., : HD // 2], x[..., HD // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Layer(nn.Module):
    def __init__(self, l):
        super().__init__()
        p = f"model.layers.{l}"
        self.n1, self.n2 = RMSNorm(f"{p}.input_layernorm.weight"), RMSNorm(f"{p}.post_attention_layernorm.weight")
        self.q, self.k, self.v, self.o = (Frozen(f"{p}.self_attn.{n}_proj.weight") for n in "qkvo")
        self.g, self.u, self.d = Frozen(f"{p}.mlp.gate_proj.weight"), Frozen(f"{p}.mlp.up_proj.weight"), Frozen(f"{p}.mlp.down_proj.weight")
        self.adapter = Adapter()

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        a = self.adapter(self.n1(x))
        q = rot(self.q(a).view(B, T, H, HD).transpose(1, 2), cos, sin)
        k = rot(self.k(a).view(B, T, H, HD).transpose(1, 2), cos, sin)
        v = self.v(a).view(B, T, H, HD).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(HD) + mask
        y = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.o(y)
        h = self.n2(x)
        return x + self.d(F.silu(self.g(h)) * self.u(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("emb", load("model.embed_tokens.weight"))
        self.layers = nn.ModuleList([Layer(l) for l in range(L)])
        self.norm = RMSNorm("model.norm.weight")
        self.head = Frozen("lm_head.weight")

    def forward(self, ids):
        T = ids.shape[1]
        x = F.embedding(ids, self.emb).float()
        cos, sin = rope_tables(T)
        mask = torch.full((T, T), float("-inf")).triu(1)
        for layer in self.layers:
            x = checkpoint(layer, x, cos, sin, mask, use_reentrant=False) if recompute == "layers" else layer(x, cos, sin, mask)
        return self.head(self.norm(x))


model = Model()
model.train()
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
g = torch.Generator().manual_seed(1)
ids = torch.randint(10, 31000, (1, seq), generator=g)
step_s, cpu_s, losses = [], [], []
for i in range(steps):
    t0 = time.perf_counter()
    c0 = time.process_time()
    logits = model(ids)
    loss = F.cross_entropy(logits[0, :-1], ids[0, 1:])
    opt.zero_grad()
    loss.backward()
    opt.step()
    step_s.append(time.perf_counter() - t0)
    cpu_s.append(time.process_time() - c0)
    losses.append(loss.item())
    print(f"[pytorch] step {i}: {step_s[-1]:.2f} s, loss {losses[-1]:.4f}", file=sys.stderr)
print(json.dumps({"who": "pytorch", "torch": torch.__version__, "threads": threads, "trainable": sum(p.numel() for p in params), "stepS": step_s, "cpuS": cpu_s, "losses": losses, "peakRssGiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
