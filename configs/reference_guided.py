"""Reference colorizer `guided`: the `accurate` network with color hints (Zhang et al. 2017, user-guided).

    python -m jaxcolor.main --config=configs/reference_guided.py --workdir=runs/reference_guided  # photos under $JAXCOLOR_DATA
    python -m jaxcolor.main --config=configs/reference_guided.py:local --workdir=runs/ref_guided_local  # CPU smoke run

Shipped as `python -m jaxcolor.colorize photo.jpg --model=guided --hints=hints.json` (MODEL_CARD.md in
jaxcolor/reference_models/guided). The EfficientNet-Lite0 U-Net of `configs/reference_accurate.py` with a hint
branch (`efficientnet_unet`, guided=True: hints added to the encoder's stem, its head and every decoder level),
fine-tuned from the shipped `accurate` weights (`init_from`; the branch starts at zero, so step 0 is `accurate`
exactly and the encoder's ImageNet features come with it). Hints are simulated from the truth in every batch
as in the paper (`config.hints`: a geometric number of points with p = 1/8, so 1/8 of the photos have none and
the model still colorizes automatically; 1-9 px patches around the center). Same loss and data as `accurate`.
The shipped run: cosine decay planned over 1,200 steps until step 841, then over 2,000 (`--config.total_steps`,
resumed: the pilot's curve was still rising); then stage 2, configs/reference_guided_192.py (800 steps at
192 px). The paper trains its network from ImageNet classification weights for ~1M iterations on 1.3M ImageNet
photos at 176 px; here: 128 then 192 px photos, a few thousand steps on a 2-core CPU
(experiments/reference_colorizers/README.md).
"""
from configs import reference_accurate


def get_config(variant: str = ""):
  c = reference_accurate.get_config(variant)
  c.model_kwargs.guided = True
  c.hints.enabled = True
  # colorize / evaluate average each photo's colors with its mirror image's (held-out scenes_256, 10 hints:
  # +0.10 dB from the network, +0.11 propagated; the network runs twice); --no_flip turns it off.
  c.inference_flip = True
  if variant != "local":
    c.pretrained.efficientnet = ""  # every encoder weight comes from `accurate`
    c.init_from = "accurate"
    c.init_from_exclude = ("params/hints",)  # the hint branch starts fresh (at zero)
    c.learning_rate = 5e-4
    c.warmup_steps = 50
    c.total_steps = 2000
    c.eval_every = 400
    c.checkpoint_every = 200
  return c
