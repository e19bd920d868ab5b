"""One typed function per analysis: what the commands and notebooks call.

``grouping`` says how rows are summed, ``compare`` loads and compares one or two snapshots (show,
diff), ``windows`` works over a window of a store inside its epochs (leaks, growth, top,
history). Callers use the names re-exported here.
"""

from allocsnap.analysis.compare import (
    DiffResult,
    ShowResult,
    Totals,
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
    Grouping,
)
from allocsnap.analysis.windows import (
    Epochs,
    LeakSettings,
    LeaksResult,
    Window,
    WindowResult,
    epochs,
    growth,
    history,
    leaks,
    tags,
    top,
)

__all__ = [
    "DEFAULT_DIR_DEPTH",
    "DiffResult",
    "Epochs",
    "GROUPINGS",
    "Grouping",
    "LeakSettings",
    "LeaksResult",
    "ShowResult",
    "Totals",
    "Window",
    "WindowResult",
    "diff",
    "epoch_warnings",
    "epochs",
    "growth",
    "history",
    "is_dump",
    "leaks",
    "load",
    "load_all",
    "resolve",
    "show",
    "snapshots",
    "tags",
    "taken_at_text",
    "top",
    "totals",
]
