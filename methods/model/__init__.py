"""Model pruning: methods that choose weight masks, once, on a schedule, or from gradients."""
