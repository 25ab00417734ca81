"""Evaluation on held-out plays: splits, metrics, scoring, baselines, intervals, tuning."""
