"""A serving process freezes what its start built, so full collections stay short; an app
built for tests (many per process) never freezes anything."""

import gc
from collections.abc import Iterator

import pytest

from api.app import create_app
from app.config import Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Starts with nothing frozen and gives back to the GC whatever the test froze."""
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
async def test_a_serving_app_freezes_what_its_start_built(settings: Settings) -> None:
    application = create_app(settings, freeze_after_start=True)
    async with application.router.lifespan_context(application):
        runtime = application.state.runtime
        assert gc.get_freeze_count() > 0
        assert gc.is_tracked(runtime)
        assert all(alive is not runtime for alive in gc.get_objects(generation=2))


@pytest.mark.usefixtures("unfrozen")
async def test_an_app_for_tests_freezes_nothing(settings: Settings) -> None:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        assert gc.get_freeze_count() == 0
