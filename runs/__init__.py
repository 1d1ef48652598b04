"""What trains, scores and exports a run: the recipe and its checks (config.py), the training loop and its
parts, scoring and its intervals, the figures, the exports, and what the CPU can do."""
