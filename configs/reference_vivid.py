"""Reference colorizer `vivid`: U-Net classification over 313 ab bins with Zhang et al.'s (2016) recipe.

    python -m jaxcolor.main --config=configs/reference_vivid.py --workdir=runs/reference_vivid  # photos under $JAXCOLOR_DATA
    python -m jaxcolor.main --config=configs/reference_vivid.py:local --workdir=runs/ref_vivid_local  # CPU smoke run

The model shipped as `python -m jaxcolor.colorize photo.jpg --model=vivid` (the default; MODEL_CARD.md in
jaxcolor/reference_models/vivid). Zhang et al.'s targets: soft encoding over the 5 nearest of 313 bins
(sigma 5), class rebalancing from the empirical prior (lambda 0.5, prior from 200 training batches), annealed
mean decoding at T = 0.38. Data and schedule are those of `reference_accurate.py`, the U-Net is the 16..256 one
(1.9M parameters, 313-way 1x1 head), chosen by the pilots in experiments/reference_colorizers/README.md.
Fine-tune on your own photos: `--config.init_from=vivid --config.dataset=folder:PATH --config.mix_datasets="()"
--config.learning_rate=3e-4` (the shipped prior is kept, so the rebalancing stays what the model learned).
"""
from configs import reference_accurate


def get_config(variant: str = ""):
  c = reference_accurate.get_config(variant)
  if variant != "local":
    c.model_kwargs.features = (16, 32, 64, 128, 256)
  c.head = "classification"
  c.loss = "cross_entropy"
  c.rebalance = True
  c.rebalance_lambda = 0.5
  c.soft_k = 5
  c.soft_sigma = 5.0
  c.decoding = "annealed_mean"
  c.temperature = 0.38
  if variant != "local":  # the local variant keeps the 2-step smoke settings reference_accurate gave it
    c.prior_batches = 200
    c.total_steps = 4000  # the shipped run (resumed twice with a shorter schedule: see its README)
  return c
