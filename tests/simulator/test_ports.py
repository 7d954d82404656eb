"""A taken port: the simulator refuses it clearly; its own port it binds again.

These tests open plain sockets (another program holding a port; the simulator
asking the system why it could not bind): `socket_enabled` allows them.
"""

from __future__ import annotations

from collections.abc import Iterator
import socket
import subprocess
import sys

from frequenz.client.microgrid import MicrogridApiClient
import pytest

from custom_components.frequenz_microgrid.simulator import (
    MicrogridSimulator,
    load_scenario,
)
from custom_components.frequenz_microgrid.simulator.cli import apply_command, main

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program listens on (a plain socket)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


async def test_a_second_simulator_on_a_taken_port_fails_clearly(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    second = MicrogridSimulator(load_scenario("depot"))
    with pytest.raises(OSError, match=rf"127\.0\.0\.1:{sim.port}: .*in use"):
        await second.start(port=sim.port)
    assert not second.running
    # The first one still serves, alone: every new client reaches it.
    home = (await client.get_microgrid_info()).name
    for _ in range(4):
        fresh = MicrogridApiClient(sim.url)
        try:
            assert (await fresh.get_microgrid_info()).name == home
        finally:
            await fresh.disconnect()


async def test_a_port_another_program_listens_on_fails(held_port: int) -> None:
    sim = MicrogridSimulator(load_scenario("home"))
    with pytest.raises(OSError, match=f"port {held_port}"):
        await sim.start(port=held_port)
    assert not sim.running


async def test_a_stopped_simulator_binds_its_port_again_at_once(
    sim: MicrogridSimulator, client: MicrogridApiClient
) -> None:
    port = sim.port
    await client.list_components()  # a connection is open
    for _ in range(3):
        await sim.stop()
        await sim.start(port=port)
        assert sim.port == port
    await client.list_components()


async def test_the_restart_command_reports_a_port_taken_meanwhile(
    sim: MicrogridSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = sim.port
    stop = sim.stop
    with socket.socket() as holder:

        async def stop_and_lose_the_port() -> None:
            await stop()
            holder.bind(("127.0.0.1", port))
            holder.listen()

        monkeypatch.setattr(sim, "stop", stop_and_lose_the_port)
        reply = await apply_command(sim, "restart")
        assert reply.startswith("error: ")
        assert f"127.0.0.1:{port}" in reply
        assert not sim.running
        monkeypatch.setattr(sim, "stop", stop)
    # Freed again: `restart` serves on the same port.
    assert await apply_command(sim, "restart") == f"restarted on {sim.url}"
    assert sim.port == port


def test_the_command_line_stops_with_the_port_in_the_message(held_port: int) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--port", str(held_port)])
    message = str(stopped.value.code)  # a text: exit status 1
    assert message.startswith(f"error: cannot listen on 127.0.0.1:{held_port}: ")
    assert "--port" in message


@pytest.mark.slow
def test_the_command_line_exits_non_zero_on_a_taken_port(held_port: int) -> None:
    result = subprocess.run(
        [
            sys.executable,
            *("-m", "custom_components.frequenz_microgrid.simulator"),
            *("--port", str(held_port)),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    last_line = result.stderr.splitlines()[-1]
    assert last_line.startswith(f"error: cannot listen on 127.0.0.1:{held_port}: ")
    assert "serving" not in result.stdout
