"""Hostile methods, one file per behaviour: what a contributed method might do to game or break the harness."""
