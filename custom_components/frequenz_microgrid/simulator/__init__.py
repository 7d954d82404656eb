"""Built-in microgrid simulator speaking the real Microgrid gRPC API (v1alpha18).

It ships with the integration so a demo entry can run a microgrid without
hardware, and it is the test bench for the engine: every setpoint it receives is
checked against the component's bounds by its own rule and counted (the newest
are kept), and current above a fuse or circuit rating is counted in ampere-seconds
(`overload_ampere_seconds`). `TelemetryTiming` spreads, reorders and delays a
round's telemetry like a real site.

    scenario = load_scenario("home")
    async with running_simulator(scenario, speed=10) as sim:
        client = MicrogridApiClient(sim.url)
"""

from .control import ReceivedSetpoint
from .faults import Fault
from .physics.ev_charger import EvSpec
from .scenario import Scenario, available_scenarios, generate_scenario, load_scenario
from .server import MicrogridSimulator, running_simulator
from .timing import DeliveryOrder, TelemetryTiming

__all__ = [
    "DeliveryOrder",
    "EvSpec",
    "Fault",
    "MicrogridSimulator",
    "ReceivedSetpoint",
    "Scenario",
    "TelemetryTiming",
    "available_scenarios",
    "generate_scenario",
    "load_scenario",
    "running_simulator",
]
