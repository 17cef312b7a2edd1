"""Zhang et al. 2017's user-guided colorization network (SIGGRAPH17, local hints), trained with simulated hints.

    python -m jaxcolor.main --config=configs/siggraph17.py --workdir=runs/siggraph17  # photos under $JAXCOLOR_DATA
    python -m jaxcolor.main --config=configs/siggraph17.py:local --workdir=runs/siggraph17_local  # CPU smoke run

The paper's setting where this codebase has it: 176 px crops, hints simulated in every batch (`config.hints`:
a geometric number of points with p = 1/8, 1-9 px patches around the center, each the true mean ab over its
patch), a Huber (smooth-L1) loss on ab, Adam. Differences: the paper starts from its automatic network's
weights (which began from ImageNet classification) and trains ~1M iterations on ImageNet with a classification
branch beside the regression one; here one regression head from scratch on the project's photos. The 34M
parameters are for an accelerator; on a CPU `configs/reference_guided.py` (a pretrained encoder with a hint
branch) is the practical recipe. Colorize with hints: `python -m jaxcolor.colorize photo.jpg --workdir=RUN
--hints=hints.json`; the figure of PSNR against hints: `python -m jaxcolor.evaluate_hints --workdir=RUN --out=DIR`.
"""
import ml_collections

from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "siggraph17"
  c.model_kwargs = ml_collections.ConfigDict(dict(width=1.0))
  c.hints.enabled = True
  c.head = "regression"
  c.loss = "huber"
  c.dataset = "photos_256"
  c.mix_datasets = (("scenes_256", 0.4), ("tiny_imagenet_64", 0.2))
  c.image_size = 176
  c.batch_size = 32
  c.optimizer = "adam"
  c.learning_rate = 1e-4
  c.b1, c.b2 = 0.9, 0.99  # the paper's Adam
  c.total_steps = 100_000
  c.eval_every = 2000
  c.eval_batches = 8
  c.checkpoint_every = 1000
  if variant == "local":
    default.local(c)
    c.mix_datasets = ()
    c.model_kwargs.width = 1 / 16
    c.learning_rate = 1e-3
  return c
