"""The gate: pure functions over saved results that decide regressions.

rules (the rule grammar), policy (the default rules, significance level and
speed guard), stats (the Mann-Whitney U test), metrics (reading a metric and
the control send's figures out of a result), row and outcome (what a comparison
found), compare (compare_runs), render (the table, the advice, the last line).
"""
