"""The power-management engine: Home-Assistant-free, typed, pure where possible.

Everything below this package reads like a small library: the component graph and
its formulas, telemetry, pool metrics, the power manager, distribution algorithms,
component health and the distributor that talks to the microgrid. It never imports
`homeassistant` (a test enforces it), so it can be tested and benchmarked on its own.

Units: power in watts (float), passive sign convention (positive = consumption,
i.e. charging; negative = production, i.e. discharging). Component ids are `int`.

The behaviour is specified in `docs/power-management-spec.md`; comments cite its
sections as "spec §N".
"""
