"""Objects that live as long as the process, kept out of the garbage collector's walks.

A full collection walks every tracked object. In a serving process most of them are the
imported framework and models and what the start built (runtime, catalog snapshot, compiled
statements): about 150,000 objects, which made each full collection a 60-120 ms pause of the
event loop, and after the import-time freeze alone, what the start built still made it 9-19
ms during a latency run (load/PROFILE.md). Frozen objects are never collected, which is what
they are anyway; only a process that serves until it exits should freeze.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collects once, then moves every object alive now to the GC's permanent generation."""
    gc.collect()
    gc.freeze()
