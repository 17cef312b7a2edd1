"""Input: datasets by name (`datasets`), local photo folders built into TFDS (`folder_dataset`), the tf.data
pipeline yielding per-process uint8 RGB batches (`input_pipeline`) and their transfer to global device arrays
(`prefetch`).

The only part of jaxcolor that uses TensorFlow (imported lazily, on first use); nothing here converts
colors: Lab and targets are computed on device (`jaxcolor.task`).
"""
