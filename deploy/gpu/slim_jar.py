"""Rewrites a jar without the entries that match any of the given regular expressions (used by pack.sh to drop
native libraries for other platforms and JCuda bindings we never load). Usage: slim_jar.py IN OUT REGEX..."""
import re
import sys
import zipfile

src, dst, patterns = sys.argv[1], sys.argv[2], [re.compile(p) for p in sys.argv[3:]]
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
    for item in zin.infolist():
        if any(p.search(item.filename) for p in patterns):
            continue
        zout.writestr(item, zin.read(item.filename))
