"""`lantern eval`: evaluation suites, their metrics, runs and the leaderboard.

metrics (pure functions shared with bench/), suites (items, running and scoring one item),
runner (the loop, per-item records, --resume, the leaderboard record), leaderboard (tables).
"""
