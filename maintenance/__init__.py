"""Partition upkeep for the time-series tables: create ahead, drain the DEFAULT partitions, retention."""
