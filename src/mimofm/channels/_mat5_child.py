"""Child process that parses a MATLAB v5 file (internal).

scipy's MAT v5 reader is C code that can crash the interpreter on a malformed file (a fuzzer found a
segmentation fault); parsing in a child process turns such a crash into a clean error in the parent.
Usage: ``python -m mimofm.channels._mat5_child IN.mat OUT.npz name1,name2,... MAX_BYTES MAX_RATIO``;
prints one JSON line: the variables it rejected (``rejected``: name -> kind) and every variable of the file
(``variables``: name, shape, MATLAB class, as :func:`scipy.io.whosmat` lists them without reading their
data). Before any variable is read, the sizes their headers declare are checked: more than ``MAX_BYTES``
in all gives ``budget`` (what, need), more than ``MAX_RATIO`` times the file's size gives ``implausible``.
"""

import json
import math
import os
import sys

import numpy as np


def main() -> int:
    """Read the variables ``argv[3]`` of the MATLAB v5 file ``argv[1]`` into the ``.npz`` ``argv[2]``; print
    one JSON line; exit status 0 on success."""
    src, out, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    max_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else None
    max_ratio = float(sys.argv[5]) if len(sys.argv) > 5 else None
    import scipy.io  # deferred: runs in a child process; SciPy only for MATLAB v5 files
    import scipy.sparse  # deferred: as above

    try:
        listing = [[name, list(shape), cls] for name, shape, cls in scipy.io.whosmat(src)]
        # bytes each wanted variable declares, complex assumed (whosmat does not tell): 16 per element at most
        declared = {n: 16 * math.prod(shape) for n, shape, _ in listing if n in names}
        total = sum(declared.values())
        if max_ratio is not None and total // 2 > max_ratio * os.path.getsize(src) + 65536:
            print(json.dumps({"implausible": {"declared": total // 2}}))
            return 4
        if max_bytes is not None and total > max_bytes:
            what = ", ".join(f"`{n}` {s}" for n, s, _ in listing if n in names)
            print(json.dumps({"budget": {"what": f"its variables ({what})", "need": total}}))
            return 4
        raw = scipy.io.loadmat(
            src, variable_names=names, squeeze_me=False, chars_as_strings=True, mat_dtype=False
        )
    except Exception as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 3
    arrays, kinds = {}, {}
    for k in names:
        if k not in raw:
            continue
        v = raw[k]
        if scipy.sparse.issparse(v):
            kinds[k] = "sparse"
        elif not isinstance(v, np.ndarray):
            kinds[k] = type(v).__name__
        elif v.dtype.names is not None:
            kinds[k] = "struct"
        elif v.dtype.hasobject:
            kinds[k] = "object"
        else:
            arrays[k] = v
    np.savez(out, **arrays)
    print(json.dumps({"rejected": kinds, "variables": listing}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
