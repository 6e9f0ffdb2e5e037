"""Evaluation (综合评价): indicators, composite scores, bands and road red/black lists over a period."""
