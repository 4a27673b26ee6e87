"""The rating-over-time plot: a well-formed, described SVG with one series per version, every text
escaped, and nothing at all when there are no ratings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

from bot.web.rating_chart import rating_chart_svg
from captionbot.service import RatingPoint

SVG = "{http://www.w3.org/2000/svg}"


def _points() -> list[RatingPoint]:
    return [
        RatingPoint("base", date(2026, 11, 1), 4, -0.5),
        RatingPoint("base", date(2026, 11, 2), 2, 0.0),
        RatingPoint("learned-r1", date(2026, 11, 2), 3, 0.5),
        RatingPoint("learned-r1", date(2026, 11, 5), 1, 1.0),
        RatingPoint('v<&>"x', date(2026, 11, 5), 2, -1.0),
    ]


def test_chart_is_svg_with_title_desc_and_one_series_per_version() -> None:
    svg = rating_chart_svg(_points())
    assert svg is not None
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img" and root.get("viewBox", "").startswith("0 0 ")
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text and "Rating over time" in title.text
    assert desc is not None and desc.text and "3 versions" in desc.text and "base: 6 ratings" in desc.text
    series = root.findall(f"{SVG}g[@class='series']")
    assert [g.get("data-version") for g in series] == ["base", "learned-r1", 'v<&>"x']
    assert all(len(g.findall(f"{SVG}polyline")) == 1 for g in series)
    # Each version has its own marker shape and line style, not only its own colour.
    shapes = [g[1].tag for g in series]  # the first marker after the line
    assert len(set(shapes)) == 3
    dashes = [g.find(f"{SVG}polyline").get("stroke-dasharray") for g in series]  # type: ignore[union-attr]
    assert len(set(dashes)) == 3


def test_every_text_is_escaped() -> None:
    svg = rating_chart_svg(_points())
    assert svg is not None
    assert "<&>" not in svg and "v&lt;&amp;&gt;&quot;x" in svg
    texts = [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert 'v<&>"x' in texts and "Day (UTC)" in texts and "Mean rating" in texts and "+0.0" in texts


def test_one_day_of_one_version_still_plots() -> None:
    svg = rating_chart_svg([RatingPoint("only", date(2026, 11, 1), 1, 1.0)])
    assert svg is not None
    root = ET.fromstring(svg)
    assert len(root.findall(f"{SVG}g[@class='series']")) == 1


def test_no_ratings_no_chart() -> None:
    assert rating_chart_svg([]) is None
