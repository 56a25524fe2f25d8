"""The gate: rules, statistics, comparison and rendering, pure functions over results."""
