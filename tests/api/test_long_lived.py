"""A serving process freezes what its start built, so full collections stay short, and
collects its young generation less often; an app built for tests (many per process) changes
nothing of the collector."""

import gc
from collections.abc import Iterator

import pytest

from api.app import create_app
from app.config import Settings
from app.long_lived import YOUNG_GENERATION_THRESHOLD


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Starts with nothing frozen and Python's thresholds; gives back to the GC whatever the
    test froze and the thresholds it found."""
    found = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    yield
    gc.unfreeze()
    gc.set_threshold(*found)


@pytest.mark.usefixtures("unfrozen")
async def test_a_serving_app_freezes_what_its_start_built(settings: Settings) -> None:
    application = create_app(settings, freeze_after_start=True)
    async with application.router.lifespan_context(application):
        runtime = application.state.runtime
        assert gc.get_freeze_count() > 0
        assert gc.is_tracked(runtime)
        assert all(alive is not runtime for alive in gc.get_objects(generation=2))
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, 10, 10)


@pytest.mark.usefixtures("unfrozen")
async def test_an_app_for_tests_freezes_nothing(settings: Settings) -> None:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == (700, 10, 10)
