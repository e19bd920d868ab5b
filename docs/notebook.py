# %% [markdown]
# # From a store to a leak, in a notebook
#
# A worked example of `allocsnap.open()` ([sql.md](sql.md)). Open it with Jupyter (jupytext
# reads these `# %%` cells) or run it as a script: `python docs/notebook.py` writes its store
# and chart into the current folder. The test suite runs it (`tests/test_notebook.py`), so
# every number below is checked.
#
# The data: three excerpts of `/proc/allocinfo` from a public bug report about the Intel `ice`
# network driver (`tests/data/public/11–13`, the 15 largest rows of `sort -g`), taken at a fresh
# boot, after 4 days and after 6 days of uptime.

# %%
import subprocess
import sys
from pathlib import Path

import allocsnap

here = Path(globals().get("__file__", "docs/notebook.py")).resolve().parent
public = here.parent / "tests" / "data" / "public"
store = Path("ice-store")

# %% [markdown]
# ## 1. Build a store from the saved dumps
#
# What a user types: `allocsnap import DUMP --at TIME --host HOST`. Importing is idempotent
# (the same dump imported the same way gets the same snapshot id).

# %%
dumps = {
    "11_pulchart_ice_fresh_boot_sort_g_tail15_2025-06-26.txt": "2025-06-26T12:00:00Z",
    "12_pulchart_ice_uptime_4days_sort_g_tail15_2025-06-30.txt": "2025-06-30T12:00:00Z",
    "13_pulchart_ice_uptime_6days_sort_g_tail15_2025-07-02.txt": "2025-07-02T12:00:00Z",
}
for name, at in dumps.items():
    command = ["import", str(public / name), "--at", at, "--host", "pulchart", "--store"]
    subprocess.run([sys.executable, "-m", "allocsnap", *command, str(store)], check=True)

db = allocsnap.open(store)
db.sql("select snapshot_id, taken_at, host, rows, total_bytes from snapshots order by taken_at")

# %% [markdown]
# ## 2. The tidy view: one row per call site per snapshot
#
# `series` carries time, host, boot, epoch and the call site beside the counters; any group
# by is one line. Total live bytes of the 15 rows grew from 6.4 GiB to 10.6 GiB.

# %%
totals = db.arrow(
    "select taken_at, sum(bytes)::bigint as bytes from series group by taken_at order by taken_at"
)
totals.to_pylist()

# %% [markdown]
# ## 3. What does `leaks` say?
#
# Nothing, and it says why: three points are too few for a trend test to be confident
# (`rejected=True` lists the series judged otherwise, with the reason).

# %%
verdicts = db.leaks(rejected=True)
verdicts.select(["key", "verdict", "reason"]).slice(0, 3).to_pylist()

# %% [markdown]
# ## 4. The deltas view: which call sites grew at every step?
#
# `deltas` is each call site's row minus its previous row inside an epoch (a reboot or a
# stretch of profiling off starts a new one). A leak grows at every step; rank those by rate.

# %%
growers = db.arrow("""
    select
        call_site,
        count(*) as steps,
        sum(delta_bytes)::bigint as growth_bytes,
        sum(delta_bytes) / (sum(elapsed_s) / 3600) as bytes_per_hour
    from deltas
    group by call_site
    having min(delta_bytes) > 0 and count(*) = 2
    order by bytes_per_hour desc, call_site
""")
finding = growers.slice(0, 1).to_pylist()[0]
finding

# %% [markdown]
# The same answer from the analyses, with the CLI's references: `db.diff("first", "latest")`
# puts the same call site first, and `db.top()` shows it still growing between day 4 and 6.

# %%
diff = db.diff("first", "latest", top=3)
assert diff["key"][0].as_py() == finding["call_site"]
recent = db.top(since="2d", top=1).to_pylist()[0]
print(
    f"{finding['call_site']}: +{finding['growth_bytes'] / 2**30:.1f} GiB in 6 days, "
    f"{finding['bytes_per_hour'] / 2**20:.1f} MiB/hour; "
    f"last 2 days {recent['bytes_per_hour'] / 2**20:.1f} MiB/hour"
)

# %% [markdown]
# ## 5. A chart of the three steepest growers
#
# `matplotlib`'s object API (no pyplot state): the figure shows in a notebook and is written
# to a PNG either way.

# %%
from matplotlib.figure import Figure

top3 = growers["call_site"].to_pylist()[:3]
points = db.arrow(
    "select call_site, taken_at, bytes from series"
    " where list_contains($sites, call_site) order by call_site, taken_at",
    sites=top3,
).to_pylist()
fig = Figure(figsize=(9, 4.5))
ax = fig.add_subplot()
for site in top3:
    rows = [p for p in points if p["call_site"] == site]
    label = site.split(" ")[-1]  # func:name (a label starting with "_" would be hidden)
    ax.plot([p["taken_at"] for p in rows], [p["bytes"] / 2**30 for p in rows], "o-", label=label)
ax.set_ylabel("live GiB")
ax.set_title("/proc/allocinfo: call sites that grew at every step")
ax.legend()
fig.autofmt_xdate()
chart = Path("ice-leak.png")
fig.savefig(chart, dpi=80)
db.close()
fig
