"""Boards: runs read back from the store, statistics (paired tests, equal cost), and the
leaderboard rendered as markdown, HTML and plots, and published inside MLflow."""
