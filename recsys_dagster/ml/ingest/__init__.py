"""Reading play logs: sources and their validation, day partitions, synthetic data, ids."""
