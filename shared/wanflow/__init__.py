"""wanflow: run Wan video and image generation jobs through an aggregator API on AWS."""

__version__ = "0.1.0"
