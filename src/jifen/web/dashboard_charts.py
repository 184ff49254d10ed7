"""The dashboard's figures (analytics/dashboard.py) as Plotly figure JSON — plain dicts with axes titles,
value labels and hover text, drawn in the page by the plotly.min.js the `plotly` package ships — and the
same figures flattened to CSV rows, so the export always says what the charts show."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jifen.web.i18n import Translator

EARN, SPEND, INK, BAND = "#2f7d5b", "#c8102e", "#3b4a6b", "rgba(47,125,91,0.15)"
FONT = {"family": '-apple-system, "PingFang SC", "Noto Sans CJK SC", sans-serif', "size": 12}


def _layout(title: str, x: str, y: str, **more) -> dict:
    return {"title": {"text": title, "font": {"size": 14}}, "font": FONT, "height": 320,
            "margin": {"l": 60, "r": 20, "t": 40, "b": 64}, "paper_bgcolor": "#fff", "plot_bgcolor": "#fff",
            "xaxis": {"title": {"text": x}, "automargin": True, "gridcolor": "#e3e6ee"},
            "yaxis": {"title": {"text": y}, "automargin": True, "gridcolor": "#e3e6ee"}, **more}


def _bar(name: str, categories: list, values: list, color: str, *, horizontal: bool = False, hover: str,
         value_format: str = ",") -> dict:
    x, y = (values, categories) if horizontal else (categories, values)
    return {"type": "bar", "name": name, "x": x, "y": y, "orientation": "h" if horizontal else "v",
            "marker": {"color": color}, "texttemplate": f"%{{{'x' if horizontal else 'y'}:{value_format}}}",
            "textposition": "auto", "hovertemplate": hover}


def _count_axis(title: str, values: list[int]) -> dict:
    """An axis of counts: whole-number ticks (no "1.5 members")."""
    ticks = {"dtick": 1} if max(values, default=0) <= 10 else {"tickformat": ",d"}
    return {"title": {"text": title}, "automargin": True, "gridcolor": "#e3e6ee", "rangemode": "tozero", **ticks}


def _top_down(title: str = "") -> dict:
    """The category axis of a horizontal bar chart, first category at the top."""
    return {"title": {"text": title}, "automargin": True, "autorange": "reversed"}


def _pct(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 2)


def figures(d: dict, t: Translator, tier_names: dict[str, str]) -> dict[str, dict]:
    """One Plotly figure per chart, keyed by the chart's id in the page (tiers by the names the programme
    gives them)."""
    days = [r["day"] for r in d["daily"]]
    daily: dict[str, Any] = {"data": [
        _bar(t("earned"), days, [r["issued"] for r in d["daily"]], EARN, hover="%{x}<br>%{fullData.name}: %{y:,}<extra></extra>"),
        _bar(t("redeemed_p"), days, [r["redeemed"] for r in d["daily"]], SPEND,
             hover="%{x}<br>%{fullData.name}: %{y:,}<extra></extra>")],
        "layout": _layout(t("c_daily"), t("ax_day"), t("points"), barmode="group",
                          legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"})}
    for trace in daily["data"]:
        trace["textposition"] = "none"  # thirty-odd days: values in the tooltip, not on the bars
    # Plotly names the months in English whatever the page's language ("Nov 8"): the days in the page's own.
    daily["layout"]["xaxis"]["tickformat"] = t("ax_day_ticks")
    types, layers = d["source"]["entry_type"], d["source"]["rule_layer"]
    hover_h = "%{y}: %{x:,}<extra></extra>"
    funnel = d["funnel"]
    steps = [t("f_earned"), t("f_ordered"), t("f_fulfilled")]
    rates, units = d["rates"], [r["units"] for r in d["top_rewards"]]
    tier_axis = [tier_names.get(r["tier"], r["tier"]) for r in d["tiers"]]
    return {
        "daily": daily,
        "source": {"data": [_bar(t("points"), [t.code("entry", r["type"]) for r in types], [r["points"] for r in types], INK,
                                 horizontal=True, hover=hover_h)],
                   "layout": _layout(t("c_source"), t("points"), "", yaxis=_top_down(t("type")))},
        "layers": {"data": [_bar(t("points"), [t.code("layer", r["layer"]) for r in layers], [r["points"] for r in layers], EARN,
                                 horizontal=True, hover=hover_h)],
                   "layout": _layout(t("c_layers"), t("points"), "", yaxis=_top_down(t("layer")))},
        "tiers": {"data": [_bar(t("ax_members"), tier_axis, [r["members"] for r in d["tiers"]],
                                INK, hover="%{x}: %{y:,}<extra></extra>")],
                  "layout": _layout(t("c_tiers"), t("tier"), "", yaxis=_count_axis(
                      t("ax_members"), [r["members"] for r in d["tiers"]]))},
        "rewards": {"data": [_bar(t("ax_units"), [r["name"] for r in d["top_rewards"]], units, SPEND,
                                  horizontal=True, hover=hover_h)],
                    "layout": _layout(t("c_rewards"), "", "", xaxis=_count_axis(t("ax_units"), units),
                                      yaxis=_top_down())},
        "funnel": {"data": [{"type": "funnel", "name": t("ax_members"), "y": steps,
                             "x": [funnel["earned"], funnel["ordered"], funnel["fulfilled"]],
                             "textinfo": "value+percent initial", "marker": {"color": [EARN, INK, SPEND]},
                             "hovertemplate": "%{y}: %{x:,} (%{percentInitial:.1%})<extra></extra>"}],
                   "layout": _layout(t("c_funnel"), t("ax_members"), "")},
        "rates": {"data": [_bar(t("ax_rate"), [t("r_" + r["rate"]) for r in rates], [_pct(r["value"]) for r in rates],
                                INK, horizontal=True, hover="%{y}: %{x:.2f}%<extra></extra>", value_format=".1f")
                           | {"width": 0.4}],  # narrower than the green band, which shows around it
                  "layout": _layout(t("c_rates"), t("ax_rate"), "", shapes=[
                      {"type": "rect", "xref": "x", "yref": "y", "x0": _pct(r["low"]), "x1": _pct(r["high"] or 1),
                       "y0": i - 0.45, "y1": i + 0.45, "fillcolor": BAND, "line": {"width": 0}, "layer": "below"}
                      for i, r in enumerate(rates)],
                      xaxis={"title": {"text": t("ax_rate")}, "range": [0, 100], "ticksuffix": "%",
                             "gridcolor": "#e3e6ee"}, yaxis=_top_down())},
    }


def csv_rows(kpis: dict, charts: dict[str, dict]) -> Iterator[tuple]:
    """(figure, series, category, value): the KPI cards, then every point of every chart."""
    for key, value in kpis.items():
        yield "kpi", "", key, value
    for name, fig in charts.items():
        for trace in fig["data"]:
            across = trace["type"] == "funnel" or trace.get("orientation") == "h"
            categories, values = (trace["y"], trace["x"]) if across else (trace["x"], trace["y"])
            for category, value in zip(categories, values, strict=True):
                yield name, trace["name"], category, value
