"""The only place where the two wings meet: a run (run.py), a backfill and `check` each read
through the HTTP wing and write or inspect through the SQL wing."""
