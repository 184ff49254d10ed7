"""The analytics pages' Plotly figures (plain dicts, drawn by the locally served plotly.min.js as on the
dashboard: web/dashboard_charts.py) from the figures analytics/ computes; every label through the i18n table."""

from __future__ import annotations

from jifen.web.dashboard_charts import BAND, EARN, INK, SPEND, _bar, _count_axis, _layout, _pct
from jifen.web.i18n import Translator

GOLD = "#b7791f"
# Several series: the legend in a row of its own between the title and the plot (beside a centred title it
# overlaps it on a half-width chart), and room on the right for a second axis.
LEGEND = {"legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"}}
TWO_AXES = {"margin": {"l": 60, "r": 80, "t": 72, "b": 64}}


def _second_axis(title: str, **more) -> dict:
    return {"title": {"text": title}, "overlaying": "y", "side": "right", "rangemode": "tozero", "automargin": True,
            "showgrid": False, **more}


def rfm_figures(rows: list[dict], t: Translator) -> dict[str, dict]:
    names = [t.code("rfm_segment", r["segment"]) for r in rows]
    members = [r["members"] for r in rows]
    return {
        "segments": {"data": [_bar(t("ax_members"), names, members, INK, hover="%{x}: %{y:,}<extra></extra>")],
                     "layout": _layout(t("c_segments"), t("segment"), "",
                                       yaxis=_count_axis(t("ax_members"), members))},
        "value": {"data": [_bar(t("a_points_held"), names, [r["points"] for r in rows], EARN,
                                hover="%{x}<br>%{fullData.name}: %{y:,}<extra></extra>") | {"offsetgroup": "1"},
                           _bar(t("a_spend"), names, [r["spend"] for r in rows], SPEND,
                                hover="%{x}<br>%{fullData.name}: ¥%{y:,.2f}<extra></extra>", value_format=",.0f")
                           | {"yaxis": "y2", "offsetgroup": "2"}],
                  "layout": _layout(t("c_segment_value"), t("segment"), t("a_points_held"), barmode="group",
                                    yaxis2=_second_axis(t("a_spend"), tickprefix="¥"), **LEGEND, **TWO_AXES)},
    }


def clv_figures(report: dict, t: Translator) -> dict[str, dict]:
    top = report["members"][:10]
    out = {"top": {"data": [_bar(t("a_clv"), [r["member_id"] for r in top], [r["clv"] for r in top], EARN,
                                 horizontal=True, hover="%{y}: ¥%{x:,.2f}<extra></extra>", value_format=",.0f")],
                   "layout": _layout(t("c_clv_top", weeks=report["horizon"]), t("a_clv"), "",
                                     yaxis={"autorange": "reversed", "automargin": True, "type": "category"})}}
    if report["holdout"]:
        groups = report["holdout"]["groups"]
        x = [g["repeat_purchases"] for g in groups]
        line = {"type": "scatter", "mode": "lines+markers", "x": x,
                "hovertemplate": "%{x}: %{y:.3f}<extra>%{fullData.name}</extra>"}
        out["holdout"] = {"data": [line | {"name": t("a_actual"), "y": [g["actual"] for g in groups],
                                           "line": {"color": INK}},
                                   line | {"name": t("a_predicted"), "y": [g["predicted"] for g in groups],
                                           "line": {"color": SPEND, "dash": "dash"}}],
                          "layout": _layout(t("c_holdout", days=report["holdout"]["days"]), t("a_repeat_calibration"),
                                            t("a_holdout_purchases"), xaxis={"type": "category",
                                                                             "title": {"text": t("a_repeat_calibration")}},
                                            **LEGEND, margin={"l": 60, "r": 20, "t": 72, "b": 64})}
    return out


def cohort_figure(triangle: dict, t: Translator) -> dict[str, dict]:
    y = [t("a_cohort_label", month=c, n=n) for c, n in zip(triangle["cohorts"], triangle["sizes"], strict=True)]
    x = [t("a_month_n", n=k) for k in triangle["offsets"]]
    z = [[_pct(v) for v in row] for row in triangle["retention"]]
    text = [["" if v is None else f"{v:.1%}" for v in row] for row in triangle["retention"]]  # as the table
    return {"cohorts": {"data": [{"type": "heatmap", "x": x, "y": y, "z": z, "colorscale": [[0, "#f6f7fb"], [1, EARN]],
                                  "zmin": 0, "zmax": 100, "text": text, "texttemplate": "%{text}", "xgap": 2, "ygap": 2,
                                  "colorbar": {"ticksuffix": "%", "title": {"text": t("a_retention")}},
                                  "hovertemplate": "%{y} · %{x}: %{z:.1f}%<extra></extra>"}],
                        "layout": _layout(t("c_cohorts"), t("a_months_after"), t("a_cohort"),
                                          height=max(320, 60 + 34 * len(y)),
                                          yaxis={"autorange": "reversed", "automargin": True, "type": "category",
                                                 "title": {"text": t("a_cohort")}},
                                          xaxis={"type": "category", "title": {"text": t("a_months_after")}})}}


def economy_figures(rows: list[dict], targets: dict, t: Translator) -> dict[str, dict]:
    months = [r["month"] for r in rows]
    hover = "%{x}<br>%{fullData.name}: %{y:,}<extra></extra>"
    bars = [_bar(t("earned"), months, [r["issued"] for r in rows], EARN, hover=hover),
            _bar(t("redeemed_p"), months, [r["redeemed"] for r in rows], SPEND, hover=hover),
            _bar(t("a_expired"), months, [r["expired"] for r in rows], GOLD, hover=hover)]
    for trace in bars:
        trace["textposition"] = "none"  # values in the tooltip: up to 24 months of bars
    flows = {"data": [*bars,
                      {"type": "scatter", "mode": "lines+markers", "name": t("a_liability"), "x": months,
                       "y": [float(r["liability"]) for r in rows], "yaxis": "y2", "line": {"color": INK},
                       "hovertemplate": "%{x}<br>%{fullData.name}: ¥%{y:,.2f}<extra></extra>"}],
             "layout": _layout(t("c_economy"), t("a_month"), t("points"), barmode="group",
                               xaxis={"type": "category", "title": {"text": t("a_month")}},
                               yaxis2=_second_axis(t("a_liability"), tickprefix="¥"), **LEGEND, **TWO_AXES)}
    lines, targets_drawn = [], []
    for name, colour in (("consumption_rate", EARN), ("active_rate", INK)):
        low, high = targets[name]
        band = f"{low:.0%}–{high:.0%}" if high is not None else f"≥ {low:.0%}"
        lines.append({"type": "scatter", "mode": "lines+markers", "name": t("a_rate_in_range", rate=t("r_" + name),
                                                                                 range=band),
                      "x": months, "y": [_pct(r[name]) for r in rows], "line": {"color": colour},
                      "hovertemplate": "%{x}<br>%{fullData.name}: %{y:.2f}%<extra></extra>"})
        # A range as a band in the line's colour; "at least" as a dashed line at the floor.
        targets_drawn.append({"type": "rect", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": _pct(low),
                              "y1": _pct(high), "fillcolor": BAND, "line": {"width": 0}, "layer": "below"}
                             if high is not None else
                             {"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": _pct(low),
                              "y1": _pct(low), "line": {"color": colour, "width": 1, "dash": "dash"}, "layer": "below"})
    rates = {"data": lines, "layout": _layout(t("c_economy_rates"), t("a_month"), t("ax_rate"), shapes=targets_drawn,
                                              xaxis={"type": "category", "title": {"text": t("a_month")}},
                                              yaxis={"title": {"text": t("ax_rate")}, "ticksuffix": "%",
                                                     "rangemode": "tozero", "gridcolor": "#e3e6ee"},
                                              **LEGEND, margin={"l": 60, "r": 20, "t": 72, "b": 64})}
    return {"economy": flows, "rates": rates}
