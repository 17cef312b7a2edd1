"""Reference colorizer `guided`, second stage: the first stage (configs/reference_guided.py) fine-tuned at 192 px.

    python -m jaxcolor.main --config=configs/reference_guided_192.py --workdir=runs/reference_guided_192  # after stage 1
    python -m jaxcolor.main --config=configs/reference_guided_192.py:local --workdir=runs/ref_guided_192_local  # CPU smoke run

Stage 1 trains the hint branch at 128 px, but the shipped model colors at 192 px (`inference_size`): this stage
continues from stage 1's run (`init_from`, every variable, the hint branch included) for 800 steps at 192 px
with half stage 1's learning rate and a short warm-up. On held-out photos_256 it raised 10 hints from 25.81 to
26.06 dB and cost 0.06 dB without hints (experiments/reference_colorizers/README.md). Give another stage-1 run
with `--config.init_from=RUN`.
"""
from configs import reference_guided


def get_config(variant: str = ""):
  c = reference_guided.get_config(variant)
  if variant != "local":
    c.init_from = "runs/reference_guided"  # stage 1's workdir, as its docstring names it
    c.init_from_exclude = ()
    c.image_size = 192
    c.learning_rate = 2.5e-4
    c.warmup_steps = 20
    c.total_steps = 800
    c.eval_every = 400
    c.checkpoint_every = 100
  return c
