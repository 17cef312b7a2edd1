"""Color science as jnp ops: sRGB <-> CIE Lab, the quantized ab space and its empirical prior.

Everything here runs on device inside the compiled steps (no host-side Lab conversion) and imports no
TensorFlow: `color` (conversions, matching scikit-image), `quantize` (Zhang et al.'s 313 ab bins, soft
encoding, decodings), `prior` (the empirical ab prior and class-rebalancing weights).
"""
