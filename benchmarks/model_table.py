"""Parameters and FLOPs per image of every registered model at its default input size, as a markdown table.

    python benchmarks/model_table.py

FLOPs come from XLA's cost analysis of the compiled inference forward pass (batch 1, float32, eval mode),
so they count what XLA actually runs (a multiply-add is 2 FLOPs). Parameters exclude BatchNorm statistics.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcolor import models

SOURCES = {
    "cnn_baseline": "seed 003 sec. 4", "autoencoder": "seeds 003 sec. 5, 001", "unet": "seed 000",
    "eccv16": "Zhang et al. 2016", "vgg16_ae": "seed 003 sec. 6.1", "resnet50_unet": "seed 004",
    "koalarization": "seed 003 sec. 6.2", "hybrid_unet": "seed 002",
    "efficientnet_unet": "EfficientNet-Lite0 (Tan & Le 2019), the shipped models",
    "siggraph17": "Zhang et al. 2017 (user-guided, takes hints)",
}


def row(name: str) -> str:
  cls = models.MODELS[name]
  size = cls.default_size
  l = jnp.zeros((1, size, size, 1), jnp.float32)
  counts, flops = {}, None
  for head in ("regression", "classification"):
    model = models.get_model(name, head=head)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), l, train=False))
    counts[head] = sum(x.size for x in jax.tree.leaves(variables["params"]))
    if head == "classification":
      compiled = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, l).compile()
      cost = compiled.cost_analysis()
      cost = cost[0] if isinstance(cost, (list, tuple)) else cost
      flops = cost["flops"]
  out_size = size // cls.output_stride
  return (f"| `{name}` | {SOURCES.get(name, '')} | {size}x{size} -> {out_size}x{out_size} | "
          f"{counts['regression'] / 1e6:.2f}M | {counts['classification'] / 1e6:.2f}M | {flops / 1e9:.1f} |")


def main() -> None:
  print("| model | source | input -> output | params (regression) | params (classification, 313 bins) "
        "| GFLOPs / image (classification) |")
  print("|---|---|---|---|---|---|")
  for name in models.MODELS:
    print(row(name), flush=True)


if __name__ == "__main__":
  main()
