"""XLA:CPU speed paths, kept out of the models' code: compiler options (`compiler`), convolutions with cheap
gradients (`conv_grad`, whose `cpu_paths()` is the one switch read at trace time) and Winograd 3x3
convolutions (`winograd`). On GPU and TPU the models run as plain Flax and nothing here is used but
`compiler.jit`.
"""
