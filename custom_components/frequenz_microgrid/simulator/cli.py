"""Command line: run a scenario and switch faults while it runs.

    python -m custom_components.frequenz_microgrid.simulator --scenario home
        --port 50051 --speed 1 [--fault 3:reject_set_power] [--sample-period 1]
        [--telemetry-spread 0.4 --telemetry-order random --telemetry-jitter 0.05
         --lag 31:3] [--ev-rate 6 --ev-seed 7]

While it runs, lines on standard input steer it (see `COMMANDS_HELP`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import logging
import signal
import sys
import threading

from .faults import Fault
from .hub_scenario import charging_hub_scenario
from .physics.ev_charger import EvSpec
from .scenario import (
    Kind,
    Scenario,
    available_scenarios,
    generate_scenario,
    generated_component,
    load_scenario,
)
from .server import MicrogridSimulator
from .timing import DeliveryOrder, TelemetryTiming
from .traffic import EvTraffic

COMMANDS_HELP = """\
commands (one per line on stdin):
  fault ID FAULT[|FAULT...]   inject faults, e.g. `fault 3 reject_set_power`
  clear ID [FAULT]            clear one fault, or all faults of a component
  end-streams                 end every telemetry stream abruptly
  restart                     restart the server on the same port
  plug ID [SOC [STAY_S]]      plug an EV (at SOC %, leaving after STAY_S) into a charger
  unplug ID                   unplug the EV at a charger
  evs                         list the EVs plugged in and the sessions finished
  status                      print setpoint, unsafe-setpoint and overload counts
  add ID KIND PARENT          connect a component live (KIND: meter, battery_inverter,
                              battery, pv_inverter, ev_charger) behind PARENT
  remove ID                   disconnect a component live, with all behind it
faults: """ + ", ".join(name.lower() for name in Fault.__members__)


def build_parser() -> argparse.ArgumentParser:
    """The command line's options."""
    parser = argparse.ArgumentParser(
        prog="python -m custom_components.frequenz_microgrid.simulator",
        description="Serve a simulated microgrid over the Microgrid API (v1alpha18).",
        epilog=COMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario",
        default="home",
        help=f"{', '.join(available_scenarios())}, a JSON file, generated:N, or "
        "hub:N (a charging hub with N chargers)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per real second"
    )
    parser.add_argument(
        "--sample-period", type=float, default=1.0, help="real seconds between samples"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="ID:FAULT",
        help="inject a fault at start, e.g. 3:stop_data (repeatable)",
    )
    timing = parser.add_argument_group(
        "telemetry timing", "spread, reorder and delay each round's messages"
    )
    timing.add_argument(
        "--telemetry-spread", type=float, metavar="S", help="spread a round over S s"
    )
    timing.add_argument(
        "--telemetry-order",
        choices=[order.value for order in DeliveryOrder],
        default=DeliveryOrder.STREAMS.value,
    )
    timing.add_argument(
        "--telemetry-jitter", type=float, default=0.0, metavar="S", help="0…S s more"
    )
    timing.add_argument(
        "--lag",
        action="append",
        default=[],
        metavar="ID:SECONDS",
        help="delay one component's telemetry (repeatable)",
    )
    timing.add_argument("--telemetry-seed", type=int, default=0)
    traffic = parser.add_argument_group(
        "EV traffic", "EVs arriving at random over the day (reproducible per seed)"
    )
    traffic.add_argument(
        "--ev-rate",
        type=float,
        metavar="PER_HOUR",
        help="site-wide EV arrivals per hour (replaces the scenario's rate; 0: none)",
    )
    traffic.add_argument(
        "--ev-seed", type=int, metavar="N", help="seed of the scenario's EV traffic"
    )
    return parser


def traffic_from_args(scenario: Scenario, args: argparse.Namespace) -> Scenario:
    """The scenario with the EV traffic the options ask for."""
    traffic = scenario.ev_traffic
    if args.ev_rate is not None:
        if args.ev_rate < 0:
            raise SystemExit("--ev-rate must be ≥ 0")
        traffic = (
            dataclasses.replace(
                traffic or EvTraffic(),
                arrivals_per_hour=(args.ev_rate,),
                per_charger=False,
                sessions=None,
            )
            if args.ev_rate > 0
            else None
        )
    if args.ev_seed is not None and traffic is not None:
        traffic = dataclasses.replace(traffic, seed=args.ev_seed)
    return dataclasses.replace(scenario, ev_traffic=traffic)


def timing_from_args(args: argparse.Namespace) -> TelemetryTiming | None:
    """The telemetry timing the options ask for (`None`: the default parts)."""
    if (
        args.telemetry_spread is None
        and not args.lag
        and not args.telemetry_jitter
        and args.telemetry_order == DeliveryOrder.STREAMS.value
    ):
        return None
    return TelemetryTiming(
        spread_s=args.telemetry_spread or 0.0,
        order=DeliveryOrder(args.telemetry_order),
        jitter_s=args.telemetry_jitter,
        lag_s=dict(TelemetryTiming.parse_lag(text) for text in args.lag),
        seed=args.telemetry_seed,
    )


def status_line(sim: MicrogridSimulator) -> str:
    """Counts for the `status` command: setpoints, unsafe ones, overloads."""
    peaks = " ".join(
        f"peak_a[{cid}]={record.peak_a:.1f}/{record.rating_a:g}"
        for cid, record in sorted(sim.overloads.items())
    )
    return (
        f"setpoints={sim.control.setpoints_received} "
        f"unsafe_setpoints={sim.unsafe_setpoint_count} "
        f"overload_as={sim.overload_ampere_seconds:.3f} {peaks} "
        f"streams={sim.hub.stream_count} sim_time={sim.model.now_s:.0f}s"
    )


def scenario_from_arg(text: str) -> Scenario:
    """`home`, `depot`, a path, `generated:N` (N components) or `hub:N` (chargers)."""
    if text.startswith("generated:"):
        return generate_scenario(int(text.removeprefix("generated:")))
    if text.startswith("hub:"):
        return charging_hub_scenario(chargers=int(text.removeprefix("hub:")))
    return load_scenario(text)


def evs_lines(sim: MicrogridSimulator) -> str:
    """The `evs` command: every plugged-in EV, then the finished sessions."""
    model = sim.model
    model.advance_to(sim.clock.now())
    lines = []
    for charger_id in sim.scenario.charger_ids:
        charger = model.component(charger_id).ev_charger
        if charger is None or (session := charger.session) is None:
            continue
        departs = (
            "stays" if session.departs_at_s is None else f"{session.departs_at_s:.0f}s"
        )
        lines.append(
            f"charger {charger_id}: plugged {session.plugged_at_s:.0f}s "
            f"soc={session.soc_pct:.1f}% {charger.current_a:.1f}A "
            f"charged={session.charged_wh / 1000:.2f}kWh departs={departs}"
        )
    lines.append(f"{len(model.finished_sessions)} sessions finished")
    lines.extend(
        f"  charger {r.charger_id}: {r.plugged_at_s:.0f}s–{r.unplugged_at_s:.0f}s "
        f"{r.charged_wh / 1000:.2f}kWh soc {r.soc_at_arrival_pct:.0f}→"
        f"{r.soc_at_departure_pct:.0f}%"
        for r in list(model.finished_sessions)[-10:]
    )
    return "\n".join(lines)


async def apply_command(sim: MicrogridSimulator, line: str) -> str:
    """Carry out one stdin command and return what to print."""
    words = line.split()
    if not words:
        return ""
    match words:
        case ["fault", component_id, fault]:
            sim.inject_fault(int(component_id), Fault.parse(fault))
            return f"component {component_id}: {sim.faults.of(int(component_id))}"
        case ["clear", component_id]:
            sim.clear_fault(int(component_id))
            return f"component {component_id}: no faults"
        case ["clear", component_id, fault]:
            sim.clear_fault(int(component_id), Fault.parse(fault))
            return f"component {component_id}: {sim.faults.of(int(component_id))}"
        case ["end-streams"]:
            count = sim.hub.stream_count
            await sim.end_all_streams()
            return f"ended {count} telemetry streams"
        case ["restart"]:
            try:
                await sim.restart()
            except OSError as err:  # the port was taken while it was closed
                return f"error: {err.strerror or err}; stopped (`restart` tries again)"
            return f"restarted on {sim.url}"
        case ["plug", charger_id, *rest] if len(rest) <= 2:
            soc = float(rest[0]) if rest else EvSpec().soc_pct
            stay = float(rest[1]) if len(rest) == 2 else None
            sim.plug_ev(int(charger_id), EvSpec(soc_pct=soc), stay_s=stay)
            return f"EV plugged into {charger_id}"
        case ["evs"]:
            return evs_lines(sim)
        case ["unplug", charger_id]:
            sim.unplug_ev(int(charger_id))
            return f"EV unplugged from {charger_id}"
        case ["status"]:
            return status_line(sim)
        case ["add", component_id, kind, parent]:
            sim.add_component(
                generated_component(int(component_id), Kind(kind), int(parent))
            )
            return f"component {component_id} ({kind}) added behind {parent}"
        case ["remove", component_id]:
            gone = sim.remove_component(int(component_id))
            return f"removed components {sorted(gone)}"
        case _:
            return f"unknown command {line.strip()!r}\n{COMMANDS_HELP}"


async def run(args: argparse.Namespace) -> None:
    """Serve until interrupted, reading commands from stdin."""
    sim = MicrogridSimulator(
        traffic_from_args(scenario_from_arg(args.scenario), args),
        speed=args.speed,
        sample_period_s=args.sample_period,
        timing=timing_from_args(args),
    )
    for spec in args.fault:
        component_id, _, fault = spec.partition(":")
        sim.inject_fault(int(component_id), Fault.parse(fault))
    try:
        await sim.start(args.host, args.port)
    except OSError as err:
        raise SystemExit(
            f"error: {err.strerror or err}; choose another port with --port "
            "(0 picks a free one)"
        ) from None
    # A standalone simulator's heap is built by now and lives as long as the
    # process: keep the garbage collector from rescanning it in every full
    # collection (≈150 ms with 400 components, during which setpoints wait).
    gc.freeze()
    print(f"Simulated microgrid '{sim.scenario.name}' serving; give the integration:")
    print(sim.url)
    print(f"Assets API (optional, same port): {sim.assets_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    commands = asyncio.create_task(_read_commands(sim))
    try:
        await stop.wait()
    finally:
        commands.cancel()
        await sim.stop()


async def _read_commands(sim: MicrogridSimulator) -> None:
    lines: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def read_stdin() -> None:
        # A daemon thread: a blocking readline must not delay shutting down.
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)

    threading.Thread(target=read_stdin, name="sim-stdin", daemon=True).start()
    while True:
        line = await lines.get()
        try:
            reply = await apply_command(sim, line)
        except (ValueError, KeyError) as err:
            reply = f"error: {err}"
        if reply:
            print(reply, flush=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m ...simulator`."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))
