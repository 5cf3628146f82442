"""InsightDesk reports service: facts fed by events, daily digests, weekly reports, exports."""
