"""The garbage collector of a process that serves until it exits.

Objects that live as long as the process are kept out of the collector's walks. A full
collection walks every tracked object. In a serving process most of them are the imported
framework and models and what the start built (runtime, catalog snapshot, compiled
statements): about 150,000 objects, which made each full collection a 60-120 ms pause of the
event loop, and after the import-time freeze alone, what the start built still made it 9-19
ms during a latency run (load/PROFILE.md). Frozen objects are never collected, which is what
they are anyway; only a process that serves until it exits should freeze.

The young generation is collected after `YOUNG_GENERATION_THRESHOLD` net allocations instead
of Python's 700. A request's objects are freed by reference counting when it ends, but what
outlives one (pooled connections' buffers, queued audit entries, caches filling) kept the
default threshold crossed: a worker under wrk with the `hospital` scene ran 130 young, 12
middle and 1-2 full collections per second, 2.5-2.8 % of its CPU (load/PROFILE.md, session
10). With 20,000 none ran in 30 s of the same load; a young collection then walks at most
that many objects (about a millisecond), and a cycle of garbage waits that much longer.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 20_000


def freeze_long_lived() -> None:
    """Collects once, moves every object alive now to the GC's permanent generation, and
    collects the young generation less often (`YOUNG_GENERATION_THRESHOLD`)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
