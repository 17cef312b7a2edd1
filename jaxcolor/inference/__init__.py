"""Trained colorizers applied to photos: a run or a shipped model loaded for inference (`colorizer`), the
full-resolution merge of the photo's own L with the predicted ab (`merge`) and the reference models shipped
in `jaxcolor/reference_models/` (`reference`). Used by `python -m jaxcolor.colorize`, `.evaluate` and the
experiments.
"""
