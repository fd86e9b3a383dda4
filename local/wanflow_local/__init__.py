"""Runs wanflow on one machine: the upstream simulator and local glue (dev and test only)."""
