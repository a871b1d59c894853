"""One TSV row from a /usr/bin/time -v report (same columns as shared/bench/peers.sh)."""
import re
import sys

tf, run, tool, phase, logical, before, after, t0, t1 = sys.argv[1:10]
t = open(tf).read()


def g(pat):
    return re.search(pat, t).group(1)


el = g(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)")
wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(el.split(":"))))
user, sys_ = float(g(r"User time \(seconds\): (\S+)")), float(g(r"System time \(seconds\): (\S+)"))
cpu = g(r"Percent of CPU this job got: (\S+)%")
rss = int(g(r"Maximum resident set size \(kbytes\): (\d+)"))
logical = int(logical)
print("\t".join(map(str, [run, tool, phase, logical, f"{wall:.2f}", f"{logical / 1e6 / wall:.1f}",
                          f"{user:.2f}", f"{sys_:.2f}", cpu, rss, after, int(after) - int(before),
                          f"{float(t1) - float(t0):.2f}", "warm", "-", "-", "-"])))
