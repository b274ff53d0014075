"""A lean forward pass for Llama-family models (SmolLM2), for the fast decode loop.

transformers' forward spends more time around the arithmetic than in it when one token passes through 30 thin
layers: mask and cache objects, dtype casts, dispatch layers, the rotary module. This one calls the model's own
modules (the same weights, int8 or not; nothing is copied) with a plain preallocated KV cache, computes the
rotary angles once per step, and asks scaled_dot_product_attention for grouped-query attention directly.
Its logits match transformers' to float rounding (tests/test_decoding.py), and the decode loop falls back to
transformers' forward for any model this does not cover (`LeanLlama.supports`).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from assistant.model.int8_layers import fast_call


class _Part(torch.nn.Module):
    """One projection's share of a fused projection, so transformers' own forward still runs on a fused model
    (computing the fused product once per part: the plain path is the slow reference anyway)."""

    def __init__(self, owner: torch.nn.Module, fused: str, start: int, end: int) -> None:
        super().__init__()
        object.__setattr__(self, "owner", owner)  # not a submodule: quantization must see the fused layer once
        self.fused, self.start, self.end = fused, start, end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.owner, self.fused)(x)[..., self.start:self.end]


def _fuse(owner: torch.nn.Module, names: tuple[str, ...], fused: str) -> None:
    parts = [getattr(owner, name) for name in names]
    weight = torch.cat([p.weight for p in parts])
    has_bias = parts[0].bias is not None
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=has_bias, dtype=weight.dtype,
                             device=weight.device)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if has_bias:
            linear.bias.copy_(torch.cat([p.bias for p in parts]))
    setattr(owner, fused, linear)
    start = 0
    for name, part in zip(names, parts):
        setattr(owner, name, _Part(owner, fused, start, start + part.weight.shape[0]))
        start += part.weight.shape[0]


def fuse_layer(layer: Any) -> None:
    """A layer's query, key and value projections as one linear layer, and its gate and up projections as
    another: fewer, larger products (at batch 2 a separate small product costs nearly as much as a fused one).
    The originals become slices of them; int8 quantization after this sees the fused layers."""
    if not hasattr(layer.self_attn, "qkv_proj"):
        _fuse(layer.self_attn, ("q_proj", "k_proj", "v_proj"), "qkv_proj")
    if not hasattr(layer.mlp, "gate_up_proj"):
        _fuse(layer.mlp, ("gate_proj", "up_proj"), "gate_up_proj")


def fuse_projections(model: Any) -> None:
    """`fuse_layer` for every layer of a Llama model."""
    for layer in model.model.layers:
        fuse_layer(layer)


class LeanLlama:
    """Runs a `LlamaForCausalLM` over rows of tokens with its own KV cache: `forward` feeds tokens and returns the
    logits of each row's last one; `repeat_rows` copies a shared prefix's cache to every row."""

    @staticmethod
    def supports(model: Any) -> bool:
        config = getattr(model, "config", None)
        rope = getattr(config, "rope_parameters", None) or {}
        return (getattr(config, "model_type", None) == "llama" and rope.get("rope_type", "default") == "default"
                and getattr(config, "hidden_act", None) == "silu" and hasattr(model, "model")
                and not getattr(config, "sliding_window", None))

    def __init__(self, model: Any) -> None:
        config = model.config
        self.model, self.layers = model, list(model.model.layers)
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        theta = config.rope_parameters["rope_theta"]
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float) / self.head_dim))
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.length = 0
        self.capacity = 0  # positions per row the cache is made with (reserve)
        self.plan: list[tuple] | None = None  # built at the first forward (_layer_plan)
        self.head = fast_call(model.lm_head)

    def reserve(self, positions: int) -> None:
        """Room for this many positions per row from the start (the prompt and every new token): growing the
        cache mid-reply copies all of it."""
        self.capacity = positions

    def _new_store(self, rows: int, size: int) -> list[torch.Tensor]:
        return [torch.empty(rows, self.kv_heads, size, self.head_dim) for _ in self.layers]

    def _room(self, rows: int, needed: int) -> None:
        """Keys and values of every layer, with room for `needed` positions (doubled when it runs out)."""
        if self.keys and self.keys[0].shape[0] == rows and self.keys[0].shape[2] >= needed:
            return
        size = max(needed, self.capacity, 2 * (self.keys[0].shape[2] if self.keys else 0), 64)
        for store in (self.keys, self.values):
            grown = self._new_store(rows, size)
            for old, new in zip(store, grown):
                new[:, :, :self.length] = old[:, :, :self.length]
            store[:] = grown

    def repeat_rows(self, repeats: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every row's cache copied `repeats` times, in place of it (a shared prefix handed to each row), into room
        for the reserved positions. Returns the replaced cache's filled part, which nothing writes to again: the
        first row of it is a snapshot of the prefix, for `RememberedPrefix`, at no cost of a copy."""
        rows, size = self.keys[0].shape[0], max(self.length, self.capacity)
        replaced = ([k[:, :, :self.length] for k in self.keys], [v[:, :, :self.length] for v in self.values])
        for store, old in zip((self.keys, self.values), replaced):
            grown = self._new_store(rows * repeats, size)
            for cached, new in zip(old, grown):
                new[:, :, :self.length] = cached if rows == 1 else cached.repeat_interleave(repeats, dim=0)
            store[:] = grown
        return replaced

    def load_prefix(self, state: tuple[list[torch.Tensor], list[torch.Tensor]], length: int) -> None:
        """Start from a snapshot's first `length` positions (one row), as if they had just been fed."""
        self.length = 0
        self.keys, self.values = [], []
        self._room(1, length)
        for store, saved in zip((self.keys, self.values), state):
            for cached, kept in zip(store, saved):
                cached[:, :, :length] = kept[:1, :, :length]
        self.length = length

    def _mask(self, valid: torch.Tensor | None, steps: int) -> torch.Tensor:
        """Which cached positions each new position sees: causal, minus padding, and always itself (a padding
        position that saw nothing would turn its row of attention into NaN)."""
        end = self.length + steps
        seen = torch.arange(end).unsqueeze(0) <= torch.arange(self.length, end).unsqueeze(1)  # [steps, end]
        if valid is None:
            return seen
        itself = torch.arange(end).unsqueeze(0) == torch.arange(self.length, end).unsqueeze(1)
        return ((seen & valid[:, None, :end].bool()) | itself).unsqueeze(1)  # [rows, 1, steps, end]

    def _layer_plan(self) -> list[tuple]:
        """Per layer, what its forward needs, looked up once per reply instead of once per token: on two cores a
        step is ~30 ops per layer, and the module machinery around each costs about as much as a small op."""
        plan = []
        for layer in self.layers:
            attn, mlp = layer.self_attn, layer.mlp
            fused = hasattr(attn, "qkv_proj") and hasattr(mlp, "gate_up_proj")
            plan.append((layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon,
                         layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon,
                         fused, attn, mlp, attn.scaling,
                         fast_call(attn.qkv_proj) if fused else None, fast_call(attn.o_proj),
                         fast_call(mlp.gate_up_proj) if fused else None, fast_call(mlp.down_proj)))
        return plan

    def _rotary(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and signed sin [rows, 1, steps, head_dim] for `x * cos + x.roll(half) * sin`, which is
        `x * cos + rotate_half(x) * sin` in two fused ops instead of five."""
        angles = positions[..., None].float() * self.inv_freq
        sin = angles.sin()
        cos = torch.cat((angles, angles), dim=-1).cos()
        return cos.unsqueeze(1), torch.cat((-sin, sin), dim=-1).unsqueeze(1)

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, valid: torch.Tensor | None, positions: torch.Tensor) -> torch.Tensor:
        """Logits after the last of `ids` [rows, steps] for every row. `valid` [rows, all positions so far] marks
        real tokens (None: no padding anywhere); `positions` [rows, steps] are the new tokens' positions."""
        rows, steps = ids.shape
        start, end = self.length, self.length + steps
        self._room(rows, end)
        if self.plan is None:
            self.plan = self._layer_plan()
        cos, sin = self._rotary(positions)
        half = self.head_dim // 2
        plain = valid is None and (steps == 1 or start == 0)  # no padding, and causal from position 0 if at all
        mask = None if plain else self._mask(valid, steps)
        causal = plain and steps > 1
        hidden = self.model.model.embed_tokens(ids)
        width = (hidden.shape[-1],)
        heads, kv_heads, dim = self.heads, self.kv_heads, self.head_dim
        for i, (norm1, eps1, norm2, eps2, fused, attn, mlp, scaling, qkv_proj, o_proj, gate_up_proj,
                down_proj) in enumerate(self.plan):
            x = F.rms_norm(hidden, width, norm1, eps1)
            if fused:
                qkv = qkv_proj(x).view(rows, steps, heads + 2 * kv_heads, dim).transpose(1, 2)
                qk = qkv[:, :heads + kv_heads]
                qk = torch.addcmul(qk * cos, qk.roll(half, -1), sin)  # queries and keys rotated together
                q, k, v = qk[:, :heads], qk[:, heads:], qkv[:, heads + kv_heads:]
            else:
                q = attn.q_proj(x).view(rows, steps, heads, dim).transpose(1, 2)
                k = attn.k_proj(x).view(rows, steps, kv_heads, dim).transpose(1, 2)
                v = attn.v_proj(x).view(rows, steps, kv_heads, dim).transpose(1, 2)
                q = torch.addcmul(q * cos, q.roll(half, -1), sin)
                k = torch.addcmul(k * cos, k.roll(half, -1), sin)
            keys, values = self.keys[i], self.values[i]
            keys[:, :, start:end] = k
            values[:, :, start:end] = v
            out = F.scaled_dot_product_attention(q, keys[:, :, :end], values[:, :, :end], attn_mask=mask,
                                                 is_causal=causal, scale=scaling, enable_gqa=heads != kv_heads)
            hidden = hidden + o_proj(out.transpose(1, 2).reshape(rows, steps, -1))
            x = F.rms_norm(hidden, width, norm2, eps2)
            if fused:
                gate, up = gate_up_proj(x).chunk(2, dim=-1)
            else:
                gate, up = mlp.gate_proj(x), mlp.up_proj(x)
            hidden = hidden + down_proj(F.silu(gate) * up)
        self.length = end
        norm = self.model.model.norm
        last = F.rms_norm(hidden[:, -1], width, norm.weight, norm.variance_epsilon)
        return self.head(last)
