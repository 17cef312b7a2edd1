"""How a colorizer is judged: per-example metrics (`metrics`) and the evaluator objects built from
`config.evals` (`evaluators`) that training, `python -m jaxcolor.evaluate` and the experiments share.
"""
