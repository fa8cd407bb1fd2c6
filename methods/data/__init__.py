"""Data pruning: methods that choose which training samples are trained on, once or per epoch."""
