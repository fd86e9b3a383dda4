"""A faithful HTTP simulator of the upstream aggregator, for tests and the local stack."""

from wanflow_local.simulator.callbacks import CallbackAttempt
from wanflow_local.simulator.faults import Faults
from wanflow_local.simulator.server import DEFAULT_API_KEY, RequestRecord, Simulator

__all__ = ["DEFAULT_API_KEY", "CallbackAttempt", "Faults", "RequestRecord", "Simulator"]
