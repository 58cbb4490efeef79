import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from keter.charts import Scale, line_chart, nice_ticks, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # also proves the SVG is well-formed XML


def y_axis(root: ET.Element) -> dict[float, float]:
    """Tick value -> its y coordinate, read from the axis as drawn."""
    ticks = {}
    for text in root.iter(f"{SVG}text"):
        if "data-tick" in text.attrib:
            ticks[float(text.attrib["data-tick"])] = float(text.attrib["y"])
    return ticks


def value_at(ticks: dict[float, float], y: float) -> float:
    """Read a y coordinate back as a value against the drawn axis (linear between its ticks)."""
    (v0, y0), (v1, y1) = sorted(ticks.items())[0], sorted(ticks.items())[-1]
    return v0 + (y - y0) * (v1 - v0) / (y1 - y0)


def close_to(ticks: dict[float, float], value: float):
    """Coordinates are rounded to 1/100 px: allow that much, in the axis's units."""
    (v0, y0), (v1, y1) = sorted(ticks.items())[0], sorted(ticks.items())[-1]
    return pytest.approx(value, abs=abs((v1 - v0) / (y1 - y0)) * 0.011)


def test_a_scale_maps_its_domain_linearly_onto_its_range():
    scale = Scale(0, 1000, 200, 20)
    assert scale(0) == 200 and scale(1000) == 20 and scale(500) == 110


@pytest.mark.parametrize(
    "lo, hi, expected",
    [(0, 9_400, [0, 2000, 4000, 6000, 8000, 10000]), (0, 3, [0, 1, 2, 3]), (-120, 480, None)],
)
def test_ticks_are_round_numbers_that_cover_the_values_and_zero(lo, hi, expected):
    ticks = nice_ticks(lo, hi)
    assert ticks[0] <= min(lo, 0) and ticks[-1] >= hi and 0 in ticks
    steps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1
    if expected:
        assert ticks == expected


def test_each_point_of_the_line_sits_at_its_value_on_the_axis():
    start = date(2026, 3, 1)
    points = [(start + timedelta(days=i), value) for i, value in enumerate([5_000, 4_200, 4_200, 900, 7_250])]
    root = parse(line_chart(points, title="Balance"))
    ticks = y_axis(root)
    dots = list(root.iter(f"{SVG}circle"))
    assert [int(c.attrib["data-value"]) for c in dots] == [v for _, v in points]
    for dot, (day, value) in zip(dots, points, strict=True):
        assert value_at(ticks, float(dot.attrib["cy"])) == close_to(ticks, value)
        assert dot.attrib["data-x"] == day.isoformat()
    xs = [float(c.attrib["cx"]) for c in dots]
    gaps = {round(b - a, 1) for a, b in zip(xs, xs[1:], strict=False)}
    assert len(gaps) == 1  # one day, one step
    polyline = next(root.iter(f"{SVG}polyline")).attrib["points"].split()
    assert polyline == [f"{c.attrib['cx']},{c.attrib['cy']}" for c in dots]


def test_the_line_chart_is_labelled_for_assistive_technology_with_tooltips():
    points = [(date(2026, 3, 1), 1_500), (date(2026, 3, 2), 1_250)]
    root = parse(line_chart(points, title="Available credits", series="Available"))
    assert root.attrib["role"] == "img" and root.attrib["aria-label"] == "Available credits"
    assert root.find(f"{SVG}title").text == "Available credits"
    assert "1 Mar 2026 (1,500 credits)" in root.find(f"{SVG}desc").text
    tooltips = [c.find(f"{SVG}title").text for c in root.iter(f"{SVG}circle")]
    assert tooltips == ["1 Mar 2026: 1,500 credits", "2 Mar 2026: 1,250 credits"]
    legend = [t.text for t in root.find(f"{SVG}g[@class='legend']").iter(f"{SVG}text")]
    assert legend == ["Available"]
    assert "Credits" in [t.text for t in root.iter(f"{SVG}text")]


def test_an_empty_line_chart_still_draws_its_axis():
    root = parse(line_chart([], title="Nothing yet"))
    assert not list(root.iter(f"{SVG}circle"))
    assert root.find(f"{SVG}desc").text == "No data for this period."


def test_stacked_bars_heights_add_up_to_each_categorys_total():
    categories = ["Jan 2026", "Feb 2026", "Mar 2026"]
    series = [("veo-3", [1_200, 0, 300]), ("sora-2", [800, 450, 0]), ("kling", [0, 50, 2_700])]
    root = parse(stacked_bars(categories, series, title="Usage by model"))
    ticks = y_axis(root)
    rects = [r for r in root.iter(f"{SVG}rect") if "data-value" in r.attrib]
    assert len(rects) == 6  # zero values draw nothing
    for rect in rects:
        value = int(rect.attrib["data-value"])
        top, height = float(rect.attrib["y"]), float(rect.attrib["height"])
        assert value_at(ticks, top) - value_at(ticks, top + height) == close_to(ticks, value)
    for category, total in zip(categories, [2_000, 500, 3_000], strict=True):
        bars = [r for r in rects if r.attrib["data-category"] == category]
        assert sum(int(r.attrib["data-value"]) for r in bars) == total
        top = min(float(r.attrib["y"]) for r in bars)
        assert value_at(ticks, top) == close_to(ticks, total)  # the stack ends at the total
        assert len({r.attrib["x"] for r in bars}) == 1
    first = next(r for r in rects if r.attrib["data-series"] == "veo-3")
    assert first.find(f"{SVG}title").text == "Jan 2026 · veo-3: 1,200 credits"


def test_negative_values_stack_below_the_zero_line():
    root = parse(stacked_bars(["Apr"], [("captured", [900]), ("refunded", [-150])], title="Net usage"))
    ticks = y_axis(root)
    refunded = next(r for r in root.iter(f"{SVG}rect") if r.attrib.get("data-series") == "refunded")
    top, height = float(refunded.attrib["y"]), float(refunded.attrib["height"])
    assert value_at(ticks, top) == close_to(ticks, 0)
    assert value_at(ticks, top + height) == close_to(ticks, -150)


def test_stacked_bars_refuse_a_series_of_the_wrong_length():
    with pytest.raises(ValueError):
        stacked_bars(["a", "b"], [("x", [1])], title="t")


def test_every_text_is_escaped():
    evil = '<script>alert("x")</script> & "quotes"'
    svg = stacked_bars([evil], [(evil, [5])], title=evil, y_label=evil)
    root = parse(svg)
    assert "<script>" not in svg
    assert root.attrib["aria-label"] == evil
    assert root.find(f"{SVG}title").text == evil
    assert {t.text for t in root.iter(f"{SVG}text")} >= {evil}
    line = line_chart([(date(2026, 1, 1), 1)], title=evil, series=evil)
    assert "<script>" not in line and parse(line).attrib["aria-label"] == evil
