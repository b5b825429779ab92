"""Benchmarks (train_step.py orchestrates, rows.py measures, flops.py counts)."""

ROW_MARK = "BENCH_JSON "  # Prefix of a child's result lines on stdout; anything else is a log.
