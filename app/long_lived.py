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
default threshold crossed. Measured with `gc.callbacks` in a worker after its start
(load/PROFILE.md, session 10): under wrk with the `hospital` scene, 2,499 young, 227 middle
and 20 full collections in 20 s (0.46 s of pauses; 2.5-2.8 % of the worker's CPU in other
rounds), none with 20,000; at 1,300 req/s open loop, 110 young and 10 middle collections of
at most 1.3 ms in 25 s, against one young collection of 5-13 ms with 20,000 (a young
collection walks the objects allocated since the last one, so it is longer when rarer). p99
at that rate did not differ beyond the machine's noise.
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
