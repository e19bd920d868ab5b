"""One typed function per analysis: what the commands and notebooks call.

``grouping`` says how rows are summed, ``compare`` loads and compares one or two snapshots (show,
diff), ``window`` is a store window and its epochs, ``windows`` the analyses over one (leaks,
growth, top, history, outliers), ``loops`` the judgement of ``allocsnap loop``'s runs. Callers
use the names re-exported here.
"""

from allocsnap.analysis.across import Across, across_kernels, kernel_sites
from allocsnap.analysis.compare import (
    DiffResult,
    ShowResult,
    Totals,
    comparable,
    counted_nothing,
    diff,
    epoch_warnings,
    is_dump,
    load,
    load_all,
    resolve,
    show,
    snapshots,
    taken_at_text,
    totals,
)
from allocsnap.analysis.grouping import (
    DEFAULT_DIR_DEPTH,
    GROUPINGS,
    WINDOW_GROUPINGS,
    Grouping,
)
from allocsnap.analysis.kernel_fleet import KernelsResult, compare_kernels
from allocsnap.analysis.kernels import Crossing, LineOptions, diff_moved
from allocsnap.analysis.kernels import Status as SiteStatus
from allocsnap.analysis.loops import (
    LoopJudgement,
    LoopSettings,
    loop,
    loop_labels,
    loop_name,
    loop_runs,
)
from allocsnap.analysis.session import Session, Store
from allocsnap.analysis.window import (
    Epochs,
    Window,
    epochs,
    tags,
    window_filters,
    window_snapshots,
)
from allocsnap.analysis.windows import (
    FLEET_SCHEMA,
    LeakSettings,
    LeaksResult,
    OutlierSettings,
    OutliersResult,
    WindowResult,
    growth,
    history,
    leaks,
    outliers,
    top,
)

__all__ = [
    "Across",
    "Crossing",
    "DEFAULT_DIR_DEPTH",
    "DiffResult",
    "Epochs",
    "FLEET_SCHEMA",
    "GROUPINGS",
    "Grouping",
    "KernelsResult",
    "LeakSettings",
    "LeaksResult",
    "LineOptions",
    "LoopJudgement",
    "LoopSettings",
    "OutlierSettings",
    "OutliersResult",
    "Session",
    "ShowResult",
    "SiteStatus",
    "Store",
    "Totals",
    "WINDOW_GROUPINGS",
    "Window",
    "WindowResult",
    "diff",
    "diff_moved",
    "across_kernels",
    "comparable",
    "compare_kernels",
    "counted_nothing",
    "epoch_warnings",
    "epochs",
    "growth",
    "history",
    "is_dump",
    "kernel_sites",
    "leaks",
    "load",
    "load_all",
    "loop",
    "loop_labels",
    "loop_name",
    "loop_runs",
    "outliers",
    "resolve",
    "show",
    "snapshots",
    "tags",
    "taken_at_text",
    "top",
    "totals",
    "window_filters",
    "window_snapshots",
]
