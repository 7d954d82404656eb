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
from .hub_scenario import charging_hub_scenario
from .physics.ev_charger import EvSpec, SessionRecord
from .scenario import Scenario, available_scenarios, generate_scenario, load_scenario
from .server import MicrogridSimulator, running_simulator
from .timing import DeliveryOrder, TelemetryTiming
from .traffic import Distribution, EvArrival, EvTraffic, TrafficPlan

__all__ = [
    "DeliveryOrder",
    "Distribution",
    "EvArrival",
    "EvSpec",
    "EvTraffic",
    "Fault",
    "MicrogridSimulator",
    "ReceivedSetpoint",
    "Scenario",
    "SessionRecord",
    "TelemetryTiming",
    "TrafficPlan",
    "available_scenarios",
    "charging_hub_scenario",
    "generate_scenario",
    "load_scenario",
    "running_simulator",
]
