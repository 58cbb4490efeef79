"""Server-rendered SVG charts: a line over days and bars stacked by series. Pure Python, no database.

A chart is drawn from the same numbers as the table beside it, so the two agree by construction; every
mark carries its exact value (`data-value` and a `<title>` tooltip) and the axis ticks are round numbers
on a linear scale that starts at zero, so a reader can check a bar against the axis. Charts are images to
assistive technology (`role="img"` with an `aria-label`); the table next to them carries the detail.
Every piece of text is escaped.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from django.utils.safestring import SafeString, mark_safe

# Colour-blind-safe palette (Okabe-Ito, without the yellow that vanishes on white).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#999999"]
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 16, 40
LEGEND_ROW = 20


@dataclass(frozen=True)
class Scale:
    """Maps the domain [lo, hi] linearly onto the range [start, end] (pixels; end may be < start)."""

    lo: float
    hi: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        if self.hi == self.lo:
            return self.start
        return self.start + (value - self.lo) * (self.end - self.start) / (self.hi - self.lo)


def nice_ticks(lo: float, hi: float, *, count: int = 5, integer: bool = True) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten apart) from below `lo` to above `hi`."""
    lo, hi = min(lo, 0), max(hi, 0)  # the axis always shows zero: bars and burn-downs are read from it
    if hi == lo:
        hi = lo + 1
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if integer:
        step = max(1, math.ceil(step))
    first = math.floor(lo / step) * step
    last = math.ceil(hi / step) * step
    ticks, n = [], 0
    while first + n * step <= last + step / 1e9:
        ticks.append(first + n * step)
        n += 1
    return [int(t) if integer or float(t).is_integer() else t for t in ticks]


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) or float(value).is_integer() else f"{value:,.2f}"


def _day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _attrs(**attrs) -> str:
    return " ".join(
        f'{name.replace("_", "-")}="{escape(str(value), quote=True)}"' for name, value in attrs.items()
    )


@dataclass
class _Frame:
    width: int
    height: int
    legend_rows: int

    @property
    def left(self) -> float:
        return MARGIN_LEFT

    @property
    def right(self) -> float:
        return self.width - MARGIN_RIGHT

    @property
    def top(self) -> float:
        return MARGIN_TOP + self.legend_rows * LEGEND_ROW

    @property
    def bottom(self) -> float:
        return self.height - MARGIN_BOTTOM


def _open(frame: _Frame, *, title: str, kind: str, description: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" '
        f"{_attrs(role='img', aria_label=title, **{'class': f'chart chart-{kind}'})} "
        f'preserveAspectRatio="xMidYMid meet" font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(description)}</desc>",
    ]


def _y_axis(parts: list[str], frame: _Frame, y: Scale, ticks: list[float], label: str) -> None:
    parts.append('<g class="axis axis-y">')
    for tick in ticks:
        at = round(y(tick), 2)
        parts.append(
            f'<line x1="{frame.left}" x2="{frame.right}" y1="{at}" y2="{at}" '
            f'stroke="{"#9aa3af" if tick == 0 else "#e5e7eb"}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{frame.left - 6}" y="{at}" text-anchor="end" dominant-baseline="middle" '
            f'fill="#4b5563" data-tick="{tick}">{escape(_number(tick))}</text>'
        )
    middle = round((frame.top + frame.bottom) / 2, 2)
    parts.append(
        f'<text class="axis-label" x="14" y="{middle}" text-anchor="middle" fill="#4b5563" '
        f'transform="rotate(-90 14 {middle})">{escape(label)}</text>'
    )
    parts.append("</g>")


def _legend(parts: list[str], frame: _Frame, names: Sequence[str]) -> None:
    parts.append('<g class="legend">')
    x, row = frame.left, 0
    for index, name in enumerate(names):
        width = 28 + 7 * len(name)
        if x + width > frame.right and x > frame.left:
            x, row = frame.left, row + 1
        y = MARGIN_TOP + row * LEGEND_ROW
        colour = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<rect x="{x}" y="{y - 9}" width="12" height="12" rx="2" fill="{colour}"/>'
            f'<text x="{x + 17}" y="{y + 1}" fill="#1f2937">{escape(name)}</text>'
        )
        x += width
    parts.append("</g>")


def _legend_rows(names: Sequence[str], width: int) -> int:
    x, rows = MARGIN_LEFT, 1
    for name in names:
        item = 28 + 7 * len(name)
        if x + item > width - MARGIN_RIGHT and x > MARGIN_LEFT:
            x, rows = MARGIN_LEFT, rows + 1
        x += item
    return rows if names else 0


def line_chart(
    points: Sequence[tuple[date, int]],
    *,
    title: str,
    series: str = "Balance",
    y_label: str = "Credits",
    unit: str = "credits",
    width: int = 720,
    height: int = 260,
    max_x_labels: int = 6,
) -> SafeString:
    """A line through (day, value) points in the order given (days ascending), with a dot per point."""
    frame = _Frame(width, height, legend_rows=_legend_rows([series], width))
    values = [value for _, value in points]
    ticks = nice_ticks(min(values, default=0), max(values, default=0))
    y = Scale(ticks[0], ticks[-1], frame.bottom, frame.top)
    x = Scale(0, max(len(points) - 1, 1), frame.left, frame.right)
    summary = (
        f"{series} from {_day(points[0][0])} ({_number(points[0][1])} {unit}) to {_day(points[-1][0])} "
        f"({_number(points[-1][1])} {unit}); lowest {_number(min(values))}, highest {_number(max(values))}."
        if points
        else "No data for this period."
    )
    parts = _open(frame, title=title, kind="line", description=summary)
    _legend(parts, frame, [series])
    _y_axis(parts, frame, y, ticks, y_label)
    parts.append('<g class="axis axis-x">')
    if points:
        step = max(1, math.ceil(len(points) / max_x_labels))
        for index in range(0, len(points), step):
            at = round(x(index), 2)
            parts.append(
                f'<text x="{at}" y="{frame.bottom + 16}" text-anchor="middle" fill="#4b5563">'
                f"{escape(_day(points[index][0]))}</text>"
            )
    parts.append("</g>")
    if points:
        coords = [(round(x(i), 2), round(y(value), 2)) for i, (_, value) in enumerate(points)]
        colour = PALETTE[0]
        parts.append(
            f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{" ".join(f"{cx},{cy}" for cx, cy in coords)}"/>'
        )
        parts.append(f'<g class="marks" fill="{colour}">')
        radius = 3 if len(points) <= 62 else 1.5
        for (day, value), (cx, cy) in zip(points, coords, strict=True):
            attrs = _attrs(data_x=day.isoformat(), data_value=value)
            parts.append(
                f'<circle cx="{cx}" cy="{cy}" r="{radius}" {attrs}>'
                f"<title>{escape(f'{_day(day)}: {_number(value)} {unit}')}</title></circle>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text above went through escape()


def stacked_bars(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    title: str,
    y_label: str = "Credits",
    unit: str = "credits",
    width: int = 720,
    height: int = 280,
) -> SafeString:
    """One bar per category, stacked by series (each series gives one value per category, in order).

    Negative values are drawn below the zero line, stacked downwards, so a refund never hides inside a bar.
    """
    for name, values in series:
        if len(values) != len(categories):
            raise ValueError(f"Series {name!r} has {len(values)} values for {len(categories)} categories")
    names = [name for name, _ in series]
    frame = _Frame(width, height, legend_rows=_legend_rows(names, width))
    tops = [sum(v for _, values in series if (v := values[i]) > 0) for i in range(len(categories))]
    bottoms = [sum(v for _, values in series if (v := values[i]) < 0) for i in range(len(categories))]
    ticks = nice_ticks(min(bottoms, default=0), max(tops, default=0))
    y = Scale(ticks[0], ticks[-1], frame.bottom, frame.top)
    slot = (frame.right - frame.left) / max(len(categories), 1)
    bar = slot * 0.7
    totals = [sum(values[i] for _, values in series) for i in range(len(categories))]
    description = (
        "; ".join(
            f"{category}: {_number(total)} {unit}" for category, total in zip(categories, totals, strict=True)
        )
        or "No data for this period."
    )
    parts = _open(
        frame, title=title, kind="stacked-bars", description=description or "No data for this period."
    )
    _legend(parts, frame, names)
    _y_axis(parts, frame, y, ticks, y_label)
    parts.append('<g class="axis axis-x">')
    for i, category in enumerate(categories):
        centre = round(frame.left + slot * (i + 0.5), 2)
        parts.append(
            f'<text x="{centre}" y="{frame.bottom + 16}" text-anchor="middle" fill="#4b5563">'
            f"{escape(category)}</text>"
        )
    parts.append("</g>")
    parts.append('<g class="marks">')
    for i, category in enumerate(categories):
        left = round(frame.left + slot * i + (slot - bar) / 2, 2)
        up = down = 0
        for index, (name, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            if value > 0:
                y0, y1 = y(up), y(up + value)
                up += value
            else:
                y0, y1 = y(down + value), y(down)
                down += value
            top, bottom = round(min(y0, y1), 2), round(max(y0, y1), 2)
            attrs = _attrs(data_category=category, data_series=name, data_value=value)
            label = f"{category} · {name}: {_number(value)} {unit}"
            parts.append(
                f'<rect x="{left}" y="{top}" width="{round(bar, 2)}" height="{round(bottom - top, 2)}" '
                f'fill="{PALETTE[index % len(PALETTE)]}" {attrs}><title>{escape(label)}</title></rect>'
            )
    parts.append("</g></svg>")
    return mark_safe("".join(parts))  # every text above went through escape()
