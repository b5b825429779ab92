"""The results suite: `python -m genimg_jax.reproduce --suite cpu|gpu|long|tiny|ROW[,ROW…]`.

rows.py (each row as data: config, data set, steps, seeds, feature spaces, reference and
protocol differences), runner.py (train a row's seeds as one program, resume and skip what is
done), scoring.py (score each seed, at the checkpoints its source scored), records.py (the JSON
records on disk), table.py (docs/RESULTS.md, results.json, README's headline rows),
searches.py and search_plots.py (the random-search section and figures), __main__.py.
"""
