"""Supervised fine-tuning of causal language models on instruction data."""
