"""The results suite: `python -m genimg_jax.reproduce --suite cpu|gpu|long|tiny|ROW[,ROW…]`.

rows.py (each row as data: config, data set, steps, seeds, feature spaces, reference and
protocol differences), runner.py (train each seed in its own work directory, evaluate, resume
and skip what is done), table.py (docs/RESULTS.md, results.json, sample grids), __main__.py.
"""
