"""Scenarios: a microgrid's topology, initial states and EV arrivals, read from data.

A scenario file (JSON, in `scenarios/`) has three tables:

- ``topology``: one row per component, with its ``id``, ``kind``, ``parent`` (the
  component it hangs from, like datafev's topology table) and kind-specific ratings;
- ``initial_state``: per component id, e.g. a battery's ``soc_pct``;
- ``ev_arrivals``: which EV arrives at which charger, when, and when it leaves;

and optionally ``ev_traffic``: EVs arriving at random, from a seed (`EvTraffic`),
``telemetry``: how each round's messages are spread, ordered, jittered and delayed
(`TelemetryTiming`), ``assets``: what the Assets API tells about the microgrid
and its components (`MicrogridAssets`), and ``bookings``, ``price_forecast`` and
``pv_forecast``: what the charging planner gets in a demo (`plan_inputs`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
import enum
import heapq
import itertools
import json
from pathlib import Path
from typing import Any

from .assets import MicrogridAssets, assets_from_dict
from .physics.battery import BatteryParams
from .physics.ev_charger import EvChargerParams, EvSpec
from .physics.inverter import InverterParams
from .plan_inputs import PlanInputs, plan_inputs_from_dict
from .timing import DeliveryOrder, TelemetryTiming
from .traffic import EvArrival, EvTraffic, TrafficPlan

SCENARIO_DIR = Path(__file__).parent / "scenarios"


class Kind(enum.StrEnum):
    """The kinds of simulated components (API category plus inverter type)."""

    GRID = "grid"
    METER = "meter"
    BATTERY_INVERTER = "battery_inverter"
    PV_INVERTER = "pv_inverter"
    BATTERY = "battery"
    EV_CHARGER = "ev_charger"


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """One row of the topology table (only the fields of its kind are used)."""

    id: int
    kind: Kind
    name: str
    parent: int | None = None
    manufacturer: str = "Frequenz Simulator"
    model: str = "sim"
    fuse_current_a: int = 0
    """Per-phase rating (A): the grid connection point's fuse, or a meter's
    circuit (0: none); the simulator counts current above it as an overload."""
    base_load_w: float = 0.0
    base_load_split: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    inverter: InverterParams | None = None
    pv_peak_w: float = 0.0
    battery: BatteryParams | None = None
    soc_pct: float = 50.0
    ev_charger: EvChargerParams | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A complete microgrid to simulate."""

    name: str
    components: tuple[ComponentSpec, ...]
    ev_arrivals: tuple[EvArrival, ...] = ()
    microgrid_id: int = 1
    start_time_of_day_s: float = 12 * 3600.0
    telemetry_timing: TelemetryTiming | None = None
    """How its telemetry rounds are delivered (`None`: the server's default)."""
    assets: MicrogridAssets = field(default_factory=MicrogridAssets)
    """What its Assets API tells (the optional ``assets`` table, `assets.py`)."""
    ev_traffic: EvTraffic | None = None
    """EVs that arrive at random besides the listed `ev_arrivals`."""
    plan_inputs: PlanInputs = field(default_factory=PlanInputs)
    """Bookings and price/PV forecasts for the charging planner (`plan_inputs`)."""
    _by_id: dict[int, ComponentSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Index components and check the topology is a tree of known ids."""
        by_id = {c.id: c for c in self.components}
        if len(by_id) != len(self.components):
            raise ValueError(f"scenario {self.name}: duplicate component ids")
        for comp in self.components:
            if comp.parent is not None and comp.parent not in by_id:
                raise ValueError(
                    f"scenario {self.name}: component {comp.id} has unknown parent "
                    f"{comp.parent}"
                )
        for arrival in self.ev_arrivals:
            charger = by_id.get(arrival.charger_id)
            if charger is None or charger.kind is not Kind.EV_CHARGER:
                raise ValueError(
                    f"scenario {self.name}: EV arrival at {arrival.charger_id}, "
                    "which is not an EV charger"
                )
        object.__setattr__(self, "_by_id", by_id)
        self.traffic_plan()  # rejects traffic at components that are not chargers

    @property
    def charger_ids(self) -> list[int]:
        """The scenario's EV chargers."""
        return [c.id for c in self.components if c.kind is Kind.EV_CHARGER]

    def traffic_plan(self) -> TrafficPlan | None:
        """The generated EV arrivals (`None` without `ev_traffic`)."""
        if self.ev_traffic is None:
            return None
        return TrafficPlan(
            self.ev_traffic,
            charger_ids=self.charger_ids,
            listed=self.ev_arrivals,
            start_tod_s=self.start_time_of_day_s,
        )

    def arrivals(self) -> Iterator[EvArrival]:
        """Listed and generated EV arrivals together, earliest first (maybe endless).

        list(itertools.takewhile(lambda a: a.arrive_at_s < 86400, s.arrivals()))
        """
        listed = sorted(self.ev_arrivals, key=lambda a: a.arrive_at_s)
        plan = self.traffic_plan()
        if plan is None:
            return iter(listed)
        return heapq.merge(listed, plan, key=lambda a: a.arrive_at_s)

    def arrivals_until(self, end_s: float) -> list[EvArrival]:
        """Every EV arriving before simulated time `end_s`, earliest first."""
        return list(
            itertools.takewhile(lambda a: a.arrive_at_s < end_s, self.arrivals())
        )

    def component(self, component_id: int) -> ComponentSpec:
        """The spec of one component (KeyError if unknown)."""
        return self._by_id[component_id]

    def has_component(self, component_id: int) -> bool:
        """Whether `component_id` is part of this scenario."""
        return component_id in self._by_id

    def children(self, component_id: int) -> list[ComponentSpec]:
        """The components connected directly behind `component_id`."""
        return [c for c in self.components if c.parent == component_id]

    def connections(self) -> list[tuple[int, int]]:
        """(source, destination) pairs, from the grid towards the leaves."""
        return [(c.parent, c.id) for c in self.components if c.parent is not None]


def available_scenarios() -> list[str]:
    """Names of the scenario files shipped with the simulator."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name (``home``, ``depot``) or a JSON file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return scenario_from_dict(data)


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """Build a scenario from the three tables of a scenario file."""
    initial: Mapping[str, Mapping[str, Any]] = data.get("initial_state", {})
    components = []
    for row in data["topology"]:
        spec = _component_from_row(row)
        state = initial.get(str(spec.id), {})
        if "soc_pct" in state:
            spec = replace(spec, soc_pct=float(state["soc_pct"]))
        components.append(spec)
    arrivals = tuple(_arrival_from_row(row) for row in data.get("ev_arrivals", []))
    hours, minutes = (int(x) for x in data.get("start_time_of_day", "12:00").split(":"))
    timing = data.get("telemetry")
    traffic = data.get("ev_traffic")
    plan_inputs = plan_inputs_from_dict(data)
    chargers = {c.id for c in components if c.kind is Kind.EV_CHARGER}
    for booking in plan_inputs.bookings:
        # Checked when read, not in `Scenario`: a charger removed live may
        # leave a booking behind (the book then refuses it).
        if booking.charger_id not in chargers:
            raise ValueError(
                f"scenario {data['name']}: booking at {booking.charger_id}, "
                "which is not an EV charger"
            )
    return Scenario(
        name=str(data["name"]),
        components=tuple(components),
        ev_arrivals=arrivals,
        microgrid_id=int(data.get("microgrid_id", 1)),
        start_time_of_day_s=hours * 3600.0 + minutes * 60.0,
        telemetry_timing=None if timing is None else _timing_from_row(timing),
        assets=assets_from_dict(data.get("assets")),
        ev_traffic=None if traffic is None else EvTraffic.parse(traffic),
        plan_inputs=plan_inputs,
    )


def _timing_from_row(row: Mapping[str, Any]) -> TelemetryTiming:
    """The ``telemetry`` table, e.g.

    ``{"spread_s": 0.4, "order": "random", "jitter_s": 0.05, "lag_s": {"31": 3}}``.
    """
    return TelemetryTiming(
        spread_s=float(row.get("spread_s", 0.0)),
        order=DeliveryOrder(row.get("order", DeliveryOrder.STREAMS.value)),
        jitter_s=float(row.get("jitter_s", 0.0)),
        lag_s={int(cid): float(s) for cid, s in row.get("lag_s", {}).items()},
        seed=int(row.get("seed", 0)),
    )


def _component_from_row(row: Mapping[str, Any]) -> ComponentSpec:
    kind = Kind(row["kind"])
    parent = row.get("parent")
    spec = ComponentSpec(
        id=int(row["id"]),
        kind=kind,
        name=str(row.get("name", f"{kind.value} {row['id']}")),
        parent=None if parent is None else int(parent),
        manufacturer=str(row.get("manufacturer", "Frequenz Simulator")),
        model=str(row.get("model", f"sim-{kind.value}")),
    )
    match kind:
        case Kind.GRID:
            return replace(spec, fuse_current_a=int(row["fuse_current_a"]))
        case Kind.METER:
            split = row.get("base_load_split", [1 / 3, 1 / 3, 1 / 3])
            return replace(
                spec,
                fuse_current_a=int(row.get("fuse_current_a", 0)),
                base_load_w=float(row.get("base_load_w", 0.0)),
                base_load_split=(float(split[0]), float(split[1]), float(split[2])),
            )
        case Kind.BATTERY_INVERTER | Kind.PV_INVERTER:
            inverter = InverterParams(
                rated_power_w=float(row["rated_power_w"]),
                exclusion_w=float(row.get("exclusion_w", 0.0)),
                phase=None if row.get("phase") is None else int(row["phase"]),
            )
            return replace(
                spec,
                inverter=inverter,
                pv_peak_w=float(row.get("peak_w", row["rated_power_w"])),
            )
        case Kind.BATTERY:
            battery = BatteryParams(
                capacity_wh=float(row["capacity_wh"]),
                max_charge_w=float(row["max_charge_w"]),
                max_discharge_w=float(row.get("max_discharge_w", row["max_charge_w"])),
                soc_lower_pct=float(row.get("soc_lower_pct", 10.0)),
                soc_upper_pct=float(row.get("soc_upper_pct", 90.0)),
                efficiency=float(row.get("efficiency", 0.95)),
            )
            return replace(spec, battery=battery)
        case Kind.EV_CHARGER:
            charger = EvChargerParams(
                phases=int(row.get("phases", 3)),
                min_current_a=float(row.get("min_current_a", 6.0)),
                max_current_a=float(row.get("max_current_a", 32.0)),
            )
            return replace(spec, ev_charger=charger)


def _arrival_from_row(row: Mapping[str, Any]) -> EvArrival:
    depart = row.get("depart_s")
    return EvArrival(
        charger_id=int(row["charger"]),
        arrive_at_s=float(row["arrive_s"]),
        depart_at_s=None if depart is None else float(depart),
        ev=EvSpec(
            capacity_wh=float(row.get("capacity_wh", 60_000.0)),
            soc_pct=float(row.get("soc_pct", 40.0)),
            phases=int(row.get("phases", 3)),
            max_current_a=float(row.get("max_current_a", 32.0)),
        ),
    )


def generate_scenario(n_components: int, *, name: str | None = None) -> Scenario:
    """A synthetic microgrid with exactly `n_components` components, for scale tests.

    A grid connection point and a grid meter, then repeating groups of a battery
    inverter with its battery, a PV inverter and an EV charger, all behind the
    grid meter, until `n_components` is reached. Should only one place be left
    for a battery inverter and its battery, it goes to a PV inverter: every
    battery inverter has its battery, so every `n_components` is a valid microgrid.
    """
    if n_components < 2:
        raise ValueError("a microgrid needs at least a grid and a grid meter")
    components = [
        ComponentSpec(1, Kind.GRID, "Grid connection point", fuse_current_a=4000),
        ComponentSpec(2, Kind.METER, "Grid meter", parent=1, base_load_w=20_000.0),
    ]
    next_id = 3
    pattern = (Kind.BATTERY_INVERTER, Kind.BATTERY, Kind.PV_INVERTER, Kind.EV_CHARGER)
    while len(components) < n_components:
        kind = pattern[(next_id - 3) % len(pattern)]
        if kind is Kind.BATTERY_INVERTER and len(components) == n_components - 1:
            # No room left for its battery, and a battery inverter without one
            # is no valid microgrid: the last component is a PV inverter instead.
            kind = Kind.PV_INVERTER
        # A battery hangs from the inverter generated just before it.
        parent = next_id - 1 if kind is Kind.BATTERY else 2
        components.append(generated_component(next_id, kind, parent))
        next_id += 1
    return Scenario(
        name=name or f"generated-{n_components}", components=tuple(components)
    )


def generated_component(component_id: int, kind: Kind, parent: int) -> ComponentSpec:
    """A component of `kind` with the generated scenarios' ratings.

    10 kW inverters, a 20 kWh battery, 8 kWp of PV, a default EV charger; what
    `generate_scenario` builds and what the simulator's `add` command connects.
    """
    base = ComponentSpec(
        component_id, kind, f"{kind.value} {component_id}", parent=parent
    )
    match kind:
        case Kind.BATTERY_INVERTER:
            return replace(base, inverter=InverterParams(rated_power_w=10_000.0))
        case Kind.BATTERY:
            battery = BatteryParams(
                capacity_wh=20_000.0, max_charge_w=10_000.0, max_discharge_w=10_000.0
            )
            soc = 20.0 + (component_id * 7) % 60
            return replace(base, battery=battery, soc_pct=float(soc))
        case Kind.PV_INVERTER:
            return replace(
                base, inverter=InverterParams(rated_power_w=10_000.0), pv_peak_w=8_000.0
            )
        case Kind.EV_CHARGER:
            return replace(base, ev_charger=EvChargerParams())
        case Kind.METER:
            return base
        case _:
            raise ValueError(f"cannot generate a {kind}")
