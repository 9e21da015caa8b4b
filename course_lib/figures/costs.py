"""Figures of notebook 05: cumulative training and inference spend with the crossover, and the
"10x more compute per request" comparison.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from course_lib import costs
from course_lib.figures.base import colors, log_axis
from course_lib.formatting import fmt

# The first day drawn, as a share of the horizon: a log axis cannot show day 0's zero spend.
FIRST_DAY_SHARE = 1e-3


def plot_lifecycle(ax: Axes, scenario: costs.Scenario, metric: str = "usd") -> Axes:
    """Cumulative training and inference spend over the horizon, crossover marked.

    The spend axis is logarithmic, so that a training line a hundred times below the
    inference line stays readable; each line is named at its right end (no legend to cover
    a line). The title states the finding (when inference overtakes training).
    """
    palette = colors()
    days = np.linspace(FIRST_DAY_SHARE * scenario.horizon_days, scenario.horizon_days, 400)
    train, serve = costs.cumulative(scenario, days, metric)
    ax.plot(days, train, color=palette[0], lw=2, label="training (and retraining)")
    ax.plot(days, serve, color=palette[1], lw=2, label="inference")
    serve_above = serve[-1] >= train[-1]
    for values, text, above in ((train, "training (and retraining)", not serve_above),
                                (serve, "inference", serve_above)):
        ax.annotate(text, (days[-1], values[-1]), xytext=(-4, 5 if above else -12),
                    textcoords="offset points", ha="right", fontsize=8, color="k")
    day = costs.crossover_day(scenario, metric)
    if day is not None and day <= scenario.horizon_days:
        level = costs.cumulative(scenario, [day], metric)[0][0]
        ax.axvline(day, color="0.4", ls=":", lw=1)
        ax.scatter([day], [level], color="k", zorder=4)
        right = day > 0.6 * scenario.horizon_days  # label on the left, inside the axes
        ax.annotate(f"crossover: {costs.format_days(day)}", (day, level),
                    xytext=(-6 if right else 6, 6), textcoords="offset points", fontsize=8,
                    ha="right" if right else "left")
        title = f"Inference overtakes training after {costs.format_days(day)}"
    elif day is not None:
        title = f"Inference overtakes training after {costs.format_days(day)} (past the horizon)"
    else:
        title = "Inference never overtakes training here"
    ax.set_xlabel("days since deployment")
    log_axis(ax, "y", f"cumulative spend ({costs.METRIC_UNITS[metric]}, log scale)")
    ax.set_xlim(0, scenario.horizon_days)
    # A decade of room below the lowest value drawn and above the highest.
    positive = np.concatenate([train[train > 0], serve[serve > 0]])
    ax.set_ylim(positive.min() / 10, positive.max() * 10)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    return ax


def plot_comparison(ax: Axes, comparison: costs.Comparison, requests_per_day: float) -> Axes:
    """B's extra value per day (flat) against its extra serving spend (rising with traffic)."""
    palette = colors()
    volumes = np.logspace(0, 11, 100)
    extra_cost = (comparison.cost_ratio - 1) * comparison.usd_per_request_a * volumes
    ax.plot(volumes, np.full_like(volumes, max(comparison.extra_value_usd_per_day, 1e-9)),
            color=palette[0], lw=2, label="value of B's better answers")
    ax.plot(volumes, np.maximum(extra_cost, 1e-9), color=palette[1], lw=2,
            label=f"B's extra serving spend ({fmt(comparison.cost_ratio)}x per request)")
    ax.axvline(requests_per_day, color="0.4", ls=":", lw=1, label="your traffic")
    be = comparison.break_even_requests_per_day
    if be is not None and be > 0:
        ax.scatter([be], [comparison.extra_value_usd_per_day], color="k", zorder=4)
        title = f"B loses above {fmt(be)} requests/day"
    else:
        title = "B never loses on serving cost"
    log_axis(ax, "x", "requests per day")
    log_axis(ax, "y", "USD per day")
    low, high = 1e-3, 1e10
    ax.set_ylim(low, high)
    # The rising spend line crosses the lower left and the upper right; the flat value line
    # one height: the legend goes in the corner that line leaves free.
    upper = np.log10(max(comparison.extra_value_usd_per_day, low)) > np.log10(low * high) / 2
    ax.legend(fontsize=7, loc="lower right" if upper else "upper left")
    ax.set_title(title, fontsize=10)
    return ax
