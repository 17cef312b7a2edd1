"""Reference colorizer `accurate`: U-Net regression of ab with an L1 loss, sized for a 2-core CPU.

    python -m jaxcolor.main --config=configs/reference_accurate.py --workdir=runs/reference_accurate  # photos under $JAXCOLOR_DATA
    python -m jaxcolor.main --config=configs/reference_accurate.py:local --workdir=runs/ref_acc_local  # CPU smoke run

The model shipped as `python -m jaxcolor.colorize photo.jpg --model=accurate` (jaxcolor/reference_models/accurate,
MODEL_CARD.md there). Why these settings (pilots in experiments/reference_colorizers/README.md):
- a 5-level U-Net of 24..384 channels (4.4M parameters) at 64 px: whole photos at 64 px show the scene a color
  depends on, ab is smooth enough to upsample to any size; the 16..256 U-Net (1.9M) of the first release was
  flat from step 1,000 (capacity-bound), the wider one scores 0.11 dB higher on held-out photos;
- L1 on ab: the conditional median keeps PSNR and AuC above the grayscale baseline from the first few hundred
  steps (L2 and Huber scored lower on Kodak24 in experiments/regression_vs_classification);
- data: the diverse 4.7k photos (photos_256) mixed half and half with Tiny-ImageNet's 30k, random resized crops
  and flips; Adam 2e-3 with warm-up and cosine decay.
Fine-tune on your own photos from the shipped weights: `--config.init_from=accurate
--config.dataset=folder:PATH --config.mix_datasets="()" --config.learning_rate=3e-4`.
"""
from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "unet"
  c.model_kwargs.features = (24, 48, 96, 192, 384)
  c.head = "regression"
  c.loss = "l1"
  c.dataset = "photos_256"
  c.mix_datasets = (("tiny_imagenet_64", 0.5),)
  c.image_size = 64
  c.inference_size = 64
  c.batch_size = 32
  c.optimizer = "adam"
  c.learning_rate = 2e-3
  c.schedule = "warmup_cosine"
  c.warmup_steps = 100
  c.total_steps = 4000  # the shipped run: cosine planned for 5,000 steps until step 1,754, then for 4,000
  c.eval_every = 500
  c.eval_batches = 8
  c.checkpoint_every = 500
  c.log_every = 100
  if variant == "local":
    default.local(c)
    c.mix_datasets = ()
    c.model_kwargs.features = (8, 16)
    c.warmup_steps = 1
  return c
