"""Sweeps: sweep files crossed into cells, one cell run and its evidence, the runner and its
executors (in process, Ray), claims and the MLflow tracking store, tracking servers."""
