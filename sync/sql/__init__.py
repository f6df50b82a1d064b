"""The SQL wing: the schema analysts query and everything a run writes to it — staging, the
diff, the safeguard, history, effective access, the ledger — plus the read queries of `status`
and `graph`. It never imports httpx or the HTTP wing (pyproject.toml's import contracts)."""
