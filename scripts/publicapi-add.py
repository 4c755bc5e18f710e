#!/usr/bin/env python3
"""Development helper: appends the symbols RS0016 reports (from a build log on stdin) to each project's
PublicAPI.Unshipped.txt, and removes those RS0017 reports as gone. Review the result; it is the public API."""
import re, sys, collections
add = collections.defaultdict(set)
remove = collections.defaultdict(set)
for line in sys.stdin:
    m = re.search(r"error (RS0016|RS0017): Symbol '(.*)' is (?:not part of the declared public API|part of the declared API, but is either not public or could not be found).*\[(.*\.csproj)\]", line)
    if not m:
        continue
    code, symbol, project = m.groups()
    (add if code == "RS0016" else remove)[project].add(symbol)
for project in set(add) | set(remove):
    folder = project.rsplit("/", 1)[0]
    for name in ("PublicAPI.Unshipped.txt", "PublicAPI.Shipped.txt"):
        path = f"{folder}/{name}"
        lines = open(path).read().splitlines()
        kept = [l for l in lines if l not in remove[project] and l.removeprefix("*REMOVED*") not in remove[project]]
        if name == "PublicAPI.Unshipped.txt":
            kept += sorted(add[project] - set(kept))
        open(path, "w").write("\n".join(kept) + "\n")
    print(f"{project}: +{len(add[project])} -{len(remove[project])}")
