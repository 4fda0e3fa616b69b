"""The operator console's figures (docs/operators.md): daily aggregates kept by an incremental,
idempotent job (``job``), and what the console reads from them (dashboard, cohorts, churn
windows, key indicators, funnels). Nothing here reads the ledger or the events at request time.
"""
