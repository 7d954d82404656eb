"""Pure, clock-driven physics of a simulated microgrid (no gRPC, no I/O).

Every model here advances by an explicit time step in simulated seconds, so tests
can drive it directly and the server only decides *when* to step it.
"""
