"""Training: the one loop every task and method goes through, the context a method's
``prepare`` step trains proxies with, and what a run costs (passes, FLOPs, memory)."""
