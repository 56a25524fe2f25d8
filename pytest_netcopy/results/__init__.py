"""Results: the schema of what a benchmark records, loading runs and baselines."""
