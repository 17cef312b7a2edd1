"""jaxcolor: automatic image colorization in JAX/Flax (L -> ab in CIE Lab)."""

__version__ = "0.1.0"
