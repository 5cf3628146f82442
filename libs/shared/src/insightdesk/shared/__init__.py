"""InsightDesk shared library: queue engine, contracts, settings, telemetry."""
