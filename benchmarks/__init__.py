"""The benchmarks of napari-lazylabels: a package (never imported by the napari_lazylabels package).

    harness/   data sets and splits, the queue, resumable JSON-lines results, machine/commit stamps,
               the lazy suite's catalogue of methods and budgets, the shared options
    report/    the tables of docs/benchmarks.md and the figures
    suites/    one module per suite: lazy (our methods and the peer), fgbg, points, plateau; the peer
               (Cellpose) and what the lazy suite's runs share (training plans, scoring)
    cli.py     the one entry point: python -m benchmarks, or python benchmarks/accuracy.py

Layers (checked by benchmarks/importlinter.toml): cli > suites > report > harness; no import cycle.
The speed and latency scripts beside them (speed.py, ui_latency.py, ...) are scripts.
"""
