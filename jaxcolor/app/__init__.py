"""A local web page for colorizing: `python -m jaxcolor.app` (see `__main__`), served by `server` over a `studio`."""
