"""The CLV calibration check drawn as the paper draws it (Fader, Hardie & Lee 2005, fig. 4): mean holdout
purchases per calibration-frequency group, actual beside predicted — a small hand-written SVG (no plotting
library needed for two lines)."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, PAD = 560, 340, 50


def calibration_svg(rows: list[dict], title: str = "Conditional expectations: holdout purchases") -> str:
    """rows as clv.conditional_expectations returns them: repeat_purchases, actual, predicted."""
    n = max(len(rows), 1)
    top = max([r["actual"] for r in rows] + [r["predicted"] for r in rows] + [1e-9]) * 1.1
    step = (WIDTH - 2 * PAD) / max(n - 1, 1)

    def point(i: int, value: float) -> str:
        return f"{PAD + i * step:.1f},{HEIGHT - PAD - value / top * (HEIGHT - 2 * PAD):.1f}"

    def line(key: str, colour: str, dash: str) -> str:
        pts = " ".join(point(i, r[key]) for i, r in enumerate(rows))
        return f'<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}" points="{pts}"/>'

    ticks = "".join(f'<text x="{PAD + i * step:.1f}" y="{HEIGHT - PAD + 18}" text-anchor="middle">'
                    f'{escape(str(r["repeat_purchases"]))}</text>' for i, r in enumerate(rows))
    levels = "".join(f'<text x="{PAD - 6}" y="{HEIGHT - PAD - k / 4 * (HEIGHT - 2 * PAD) + 4:.1f}" '
                     f'text-anchor="end">{top * k / 4:.2f}</text>' for k in range(5))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
            f'font-size="11">'
            f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="13">{escape(title)}</text>'
            f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>'
            f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>{ticks}{levels}'
            f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle">repeat purchases in calibration</text>'
            f'{line("actual", "#1f77b4", "none")}{line("predicted", "#d62728", "6 4")}'
            f'<text x="{WIDTH - PAD}" y="{PAD}" text-anchor="end" fill="#1f77b4">— actual</text>'
            f'<text x="{WIDTH - PAD}" y="{PAD + 16}" text-anchor="end" fill="#d62728">- - predicted</text></svg>\n')
