"""Research runs: submit (validated, limited, queued), execute (in the `research` worker),
cancel, and the pictures of their results. Views, the admin, the dashboard pages and the
management commands all come here; one module per area:

- `inputs`: a request body checked field by field, and the optimiser's costs from it;
- `submit`: who asks (`Principal`), the limits, `run_submit` and `run_cancel`;
- `progress`: the progress event and the reporter a running run writes through;
- `execute`: `run_execute` (backtest, grid, walk-forward) and `runs_interrupted_fail`;
- `results`: walk-forward summary, heatmap, curve points, indicator lines, chart data.
"""

from strategies.research.services.execute import run_execute, runs_interrupted_fail
from strategies.research.services.inputs import MAX_WALK_FORWARD_FOLDS
from strategies.research.services.progress import (
    CANCEL_POLL_SECONDS,
    PROGRESS_EVERY_SECONDS,
    progress_payload,
)
from strategies.research.services.results import (
    CHART_BARS,
    CURVE_POINTS,
    MAX_INDICATOR_BARS,
    MAX_WARMUP_BARS,
    chart_data,
    curve_points,
    heatmap,
    indicator_lines,
    walk_forward_summary,
)
from strategies.research.services.submit import QUEUE, Principal, run_cancel, run_submit

__all__ = [
    "CANCEL_POLL_SECONDS",
    "CHART_BARS",
    "CURVE_POINTS",
    "MAX_INDICATOR_BARS",
    "MAX_WALK_FORWARD_FOLDS",
    "MAX_WARMUP_BARS",
    "PROGRESS_EVERY_SECONDS",
    "QUEUE",
    "Principal",
    "chart_data",
    "curve_points",
    "heatmap",
    "indicator_lines",
    "progress_payload",
    "run_cancel",
    "run_execute",
    "run_submit",
    "runs_interrupted_fail",
    "walk_forward_summary",
]
