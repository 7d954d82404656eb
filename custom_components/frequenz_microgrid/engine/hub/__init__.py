"""The charging hub: what a site operator decides about EV charging and learns from it.

datafev's `ChargerCluster` brought to a live microgrid (issue 15): circuits with
power limits over time and a tolerance, charger modes, charging sessions and
occupancy, reports. Home-Assistant-free like the rest of the engine; one module
per concept.
"""
