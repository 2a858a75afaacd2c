"""Hostile Network(...) and forward(...) arguments: a result or a ValueError / TypeError,
nothing passed in modified, in bounded time and memory (run in the sandbox's child)."""
import numpy as np
from hypothesis import HealthCheck, event, given, settings

import strategies
from sandbox import sandbox_fixture  # noqa: F401  (the 'sandbox' fixture)
from targets import verdict


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(call=strategies.network_calls())
def test_network_and_forward_arguments(sandbox, call):
    outcome = sandbox.run("network", *call)
    event(f"{outcome.kind} {outcome.error}")
    problem = verdict(outcome)
    assert problem is None, problem


def test_activation_parameter_too_large_for_a_float(sandbox):
    outcome = sandbox.run("network", ([np.eye(2)], None, [("elu", {"alpha": 10**400})]), {},
                          [], {})
    problem = verdict(outcome)
    assert problem is None, problem
