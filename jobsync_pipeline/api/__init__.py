"""The search API that clients on any device use (`jobsync api`): app.py, and the one page for people."""
