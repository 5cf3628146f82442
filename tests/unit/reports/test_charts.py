"""The weekly charts are PNG images."""

from __future__ import annotations

from datetime import date, timedelta

from insightdesk.reports.charts import response_chart, volume_chart

PNG = b"\x89PNG\r\n\x1a\n"


def test_charts_render_as_png() -> None:
    days = [date(2026, 3, 2) + timedelta(days=i) for i in range(7)]
    volume = volume_chart(days, [5, 3, 8, 0, 2, 9, 4], [4, 4, 6, 1, 1, 7, 5])
    response = response_chart([10, 4, 3, 1, 0])
    for image in (volume, response):
        assert image.startswith(PNG)
        assert len(image) > 2000
    assert volume != response
