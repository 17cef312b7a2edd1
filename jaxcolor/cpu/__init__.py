"""XLA:CPU speed paths, kept out of the models' code: compiler options (`compiler`), convolutions with cheap
gradients (`conv_grad`, whose `cpu_paths()` is the one switch), Winograd 3x3 and depthwise convolutions
(`winograd`, `depthwise`), and `kernels`, the one place that hands these layers to a model's `conv` / ...
fields (`builders.build_model` calls it). On GPU and TPU the models run as plain Flax and nothing here is used
but `compiler.jit`.
"""
