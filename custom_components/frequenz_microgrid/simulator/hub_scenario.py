"""A charging hub of any size: chargers behind feeder circuits, a day of EV traffic.

    charging_hub_scenario(chargers=100, circuits=3, sessions=300, seed=1)

Ids: 1 grid connection point, 2 grid meter, 3 building (base load), 4 PV
inverter, `CIRCUIT_BASE_ID` + i the feeder meter of circuit i (with its
per-phase fuse), `CHARGER_BASE_ID` + n charger n; chargers are dealt to the
circuits in blocks (the first third behind the first feeder, …). The day starts
at midnight, so simulated time is the time of day.
"""

from __future__ import annotations

from dataclasses import dataclass

from .physics.ev_charger import EvChargerParams
from .physics.inverter import InverterParams
from .scenario import ComponentSpec, Kind, Scenario
from .traffic import Distribution, EvTraffic

GRID_ID, GRID_METER_ID, BUILDING_ID, PV_ID = 1, 2, 3, 4
CIRCUIT_BASE_ID = 10
CHARGER_BASE_ID = 100
DAY_S = 86_400.0

DEPOT_ARRIVALS_PER_HOUR = (
    *(0.2,) * 5,  # 00–05: a few night arrivals
    *(1.5, 3.0, 3.0, 2.0, 1.0),  # 05–10: morning shift
    *(0.8,) * 5,  # 10–15
    *(2.0, 3.0, 3.0, 2.0, 1.0),  # 15–20: fleet returns
    *(0.5,) * 4,  # 20–24
)
"""Relative arrival rate by hour of day (scaled to the session count)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HubRatings:
    """The electrical ratings of a generated hub."""

    grid_fuse_a: int = 800
    circuit_fuse_a: int = 160
    building_load_w: float = 20_000.0
    pv_peak_w: float = 60_000.0


def charging_hub_scenario(
    *,
    chargers: int = 100,
    circuits: int = 3,
    sessions: int | None = None,
    seed: int = 1,
    ratings: HubRatings | None = None,
) -> Scenario:
    """A hub of `chargers` 6–32 A chargers behind `circuits` fused feeders.

    `sessions` EVs (default three per charger) arrive over one day, more in the
    morning and the evening, and stay 2.5 h on average.
    """
    if chargers < 1 or not 1 <= circuits <= chargers:
        raise ValueError("a hub needs ≥ 1 charger and 1…chargers circuits")
    ratings = ratings or HubRatings()
    components = [
        ComponentSpec(
            GRID_ID,
            Kind.GRID,
            "Grid connection point",
            fuse_current_a=ratings.grid_fuse_a,
        ),
        ComponentSpec(GRID_METER_ID, Kind.METER, "Grid meter", parent=GRID_ID),
        ComponentSpec(
            BUILDING_ID,
            Kind.METER,
            "Building",
            parent=GRID_METER_ID,
            base_load_w=ratings.building_load_w,
            base_load_split=(0.4, 0.35, 0.25),
        ),
        ComponentSpec(
            PV_ID,
            Kind.PV_INVERTER,
            "PV roof",
            parent=GRID_METER_ID,
            inverter=InverterParams(rated_power_w=ratings.pv_peak_w),
            pv_peak_w=ratings.pv_peak_w,
        ),
    ]
    for circuit in range(circuits):
        components.append(
            ComponentSpec(
                CIRCUIT_BASE_ID + circuit,
                Kind.METER,
                f"Feeder {circuit + 1}",
                parent=GRID_METER_ID,
                fuse_current_a=ratings.circuit_fuse_a,
            )
        )
    for n in range(chargers):
        circuit = n * circuits // chargers
        components.append(
            ComponentSpec(
                CHARGER_BASE_ID + n,
                Kind.EV_CHARGER,
                f"Charge point {n + 1}",
                parent=CIRCUIT_BASE_ID + circuit,
                ev_charger=EvChargerParams(),
            )
        )
    traffic = EvTraffic(
        seed=seed,
        arrivals_per_hour=DEPOT_ARRIVALS_PER_HOUR,
        sessions=3 * chargers if sessions is None else sessions,
        start_s=0.0,
        end_s=DAY_S - 3600.0,
        capacity_wh=Distribution(choices=(40_000.0, 60_000.0, 77_000.0, 100_000.0)),
        soc_pct=Distribution(uniform=(10.0, 60.0)),
        stay_s=Distribution(normal=(2.5 * 3600.0, 3600.0), low=1800.0, high=8 * 3600.0),
        phases=Distribution(choices=(3.0, 3.0, 3.0, 1.0)),
        max_current_a=Distribution(choices=(16.0, 32.0, 32.0)),
    )
    return Scenario(
        name=f"hub-{chargers}",
        components=tuple(components),
        microgrid_id=3,
        start_time_of_day_s=0.0,
        ev_traffic=traffic,
    )
