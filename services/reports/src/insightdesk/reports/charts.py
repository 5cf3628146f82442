"""The weekly report's charts as PNG bytes (matplotlib's Agg renderer, no display, no global
pyplot state: each chart is its own ``Figure``)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from insightdesk.reports.digest import RESPONSE_BUCKETS

SIZE = (6.4, 3.2)
DPI = 100


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, bbox_inches="tight")
    return out.getvalue()


def volume_chart(days: Sequence[date], new: Sequence[int], solved: Sequence[int]) -> bytes:
    """Tickets created and solved per day, side by side."""
    figure = Figure(figsize=SIZE)
    axes = figure.add_subplot()
    xs = range(len(days))
    axes.bar([x - 0.2 for x in xs], new, width=0.4, label="new", color="#4C72B0")
    axes.bar([x + 0.2 for x in xs], solved, width=0.4, label="solved", color="#55A868")
    axes.set_xticks(list(xs), [d.strftime("%a %d") for d in days])
    axes.set_ylabel("tickets")
    axes.set_title("Ticket volume per day")
    axes.legend()
    return _png(figure)


def response_chart(counts: Sequence[int]) -> bytes:
    """How long customers waited for a first response, by bucket."""
    figure = Figure(figsize=SIZE)
    axes = figure.add_subplot()
    axes.bar(list(RESPONSE_BUCKETS), list(counts), color="#C44E52")
    axes.set_ylabel("tickets")
    axes.set_title("First-response time")
    return _png(figure)
