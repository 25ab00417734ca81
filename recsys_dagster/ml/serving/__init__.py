"""Serving tables from factors: top-k scoring, recommendations, similar items."""
