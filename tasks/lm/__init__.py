"""Language-model tasks scored by perplexity (post-training pruning of causal LMs)."""
