"""Reports over results: tables, crossovers, CSV, plots."""
