"""Render one run of peers.tsv as Markdown tables with ratios against restic."""
import sys
from collections import defaultdict

path, run = sys.argv[1], sys.argv[2]
rows = [l.rstrip("\n").split("\t") for l in open(path)]
head, rows = rows[0], [r for r in rows[1:] if r[0] == run]
col = {n: i for i, n in enumerate(head)}
data = defaultdict(dict)
for r in rows:
    data[r[col["tool"]]][r[col["phase"]]] = r
tools = list(dict.fromkeys(r[col["tool"]] for r in rows))


def f(tool, phase, name, conv=float):
    try:
        return conv(data[tool][phase][col[name]])
    except (KeyError, ValueError):
        return None


print(f"### Run {run}\n")
def durable(tool):
    w, s = f(tool, "restore", "wall_s"), f(tool, "restore", "post_sync_s")
    return w + s if w is not None and s is not None else None


print("| tool | full s | full MB/s | incr s | incr added MB | vm2 s | vm2 added MB | restore s | restore + sync s | final repo MB | peak RSS MiB | restore check |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for t in tools:
    rss = max((f(t, p, "maxrss_kib", int) or 0) for p in ("full", "incr", "vm2", "restore")) / 1024
    print(f"| {t} | {f(t,'full','wall_s')} | {f(t,'full','MBps')} | {f(t,'incr','wall_s')} | "
          f"{(f(t,'incr','repo_added_bytes',int) or 0)/1e6:.1f} | {f(t,'vm2','wall_s')} | "
          f"{(f(t,'vm2','repo_added_bytes',int) or 0)/1e6:.1f} | {f(t,'restore','wall_s')} | "
          f"{durable(t):.2f} | {(f(t,'final','repo_bytes_after',int) or 0)/1e6:.1f} | {rss:.0f} | "
          f"{data[t].get('restore', [''] * len(head))[col['verify']]} |")
if "restic" in data:
    print("\nRatios against restic (targets from the issue in brackets):\n")
    for t in tools:
        if t == "restic":
            continue
        def ratio(a, b):
            return f"{a / b:.2f}x" if a and b else "n/a"
        print(f"- {t}: full speed {ratio(f('restic','full','wall_s'), f(t,'full','wall_s'))} [>= 3.5x], "
              f"incr speed {ratio(f('restic','incr','wall_s'), f(t,'incr','wall_s'))} [>= 6x], "
              f"incr growth {ratio(f(t,'incr','repo_added_bytes',int), f('restic','incr','repo_added_bytes',int))} [<= 0.2x], "
              f"restore speed {ratio(f('restic','restore','wall_s'), f(t,'restore','wall_s'))} "
              f"(durable, with the sync restic leaves to the OS: {ratio(durable('restic'), durable(t))}) [>= 2x], "
              f"final repo {ratio(f(t,'final','repo_bytes_after',int), f('restic','final','repo_bytes_after',int))} [<= 0.8x]")
