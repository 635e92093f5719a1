"""jobsync: a fresh, diffed catalog of job postings, run as Dagster assets."""
