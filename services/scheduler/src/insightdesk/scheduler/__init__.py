"""InsightDesk scheduler service: schedules as data, turned into jobs and events exactly once
per slot by any number of replicas, and the queue engine's maintenance."""
