"""The size of our signed status list at 10 M cards with a pool of 16 indexes each.

Builds the list with token_service's own code (`StatusList`, `sign_status_list_cwt`) for
several fractions of cards that are not valid, and writes the table into load/RESULTS.md
(section "Status list size"; `load.run_benchmarks` keeps it when it rewrites the file):

    .venv/bin/python -m load.status_list_size            # ~1 min per scenario
    .venv/bin/python -m load.status_list_size --cards 1000000 --pool 16

Only entries that are not VALID differ from a zero byte array, so only the pools of the
cards that are not valid are drawn (at random positions, as `app.cards.status_indexes` does);
the valid cards' pools are zero entries like the free ones and change nothing in the bytes.
"""

from __future__ import annotations

import argparse
import random
import time
import zlib
from dataclasses import dataclass

import cbor2

from load.results_file import write_section
from token_service import KeyRing, Status, StatusList, sign_status_list_cwt

TITLE = "## Status list size (10 M cards x 16 indexes)"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    pool: int
    lost: float
    suspended: float
    cancelled: float
    replaced: float
    """Fraction of cards with one retired pool (a replacement): INVALID for good."""
    levels: tuple[int, ...] = (9,)
    """zlib levels to measure; 9 is what we serve (the draft recommends the highest)."""


REALISTIC = "0.5 % lost, 0.05 % suspended, 2 % cancelled, 3 % replaced once"


def scenarios(pool: int) -> tuple[Scenario, ...]:
    return (
        Scenario("every card valid", pool, 0, 0, 0, 0),
        Scenario(f"realistic: {REALISTIC}", pool, 0.005, 0.0005, 0.02, 0.03, (9, 6, 1)),
        Scenario(
            f"the same with one index per card (before the pools): {REALISTIC}",
            1,
            0.005,
            0.0005,
            0.02,
            0.03,
        ),
    )


def list_size(cards: int, pool: int) -> int:
    """The smallest power of two that keeps the pools at most 2/3 of the list (random draws
    stay cheap: a draw hits a taken index at most 2 times in 3)."""
    size = 1024
    while size * 2 < cards * pool * 3:
        size *= 2
    return size


def build(cards: int, size: int, scenario: Scenario, rng: random.Random) -> StatusList:
    pool = scenario.pool
    status_list = StatusList(size, bits=2)
    groups = (
        (round(cards * scenario.lost), Status.LOST),
        (round(cards * scenario.suspended), Status.SUSPENDED),
        (round(cards * scenario.cancelled), Status.INVALID),
        (round(cards * scenario.replaced), Status.INVALID),
    )
    for count, status in groups:
        for _ in range(count * pool):
            position = rng.randrange(size)
            while status_list.get(position) != Status.VALID:  # taken: draw again
                position = rng.randrange(size)
            status_list.set(position, status)
    return status_list


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10_000_000)
    parser.add_argument("--pool", type=int, default=16)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    keyring = KeyRing.ephemeral()
    rng = random.Random(20261202)
    rows = []
    for scenario in scenarios(args.pool):
        size = list_size(args.cards, scenario.pool)
        started = time.perf_counter()
        status_list = build(args.cards, size, scenario, rng)
        built = time.perf_counter() - started
        for level in scenario.levels:
            started = time.perf_counter()
            signed = "-"
            if level == 9:  # what we serve: `sign_status_list_cwt` compresses at level 9
                document = _signed(status_list, keyring)
                compressed = len(cbor2.loads(cbor2.loads(document).value[2])[65533]["lst"])
                signed = f"{len(document):,}"
            else:
                compressed = len(zlib.compress(status_list.to_bytes(), level=level))
            took = time.perf_counter() - started
            rows.append(
                f"| {scenario.name} | {scenario.pool} | {size:,} | {len(status_list.to_bytes()):,}"
                f" | {level} | {compressed:,} | {signed} | {built:.0f} | {took:.1f} |"
            )
            print(rows[-1], flush=True)
    section = "\n".join(
        [
            TITLE,
            "",
            f"Command: `.venv/bin/python -m load.status_list_size` (measured"
            f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on the shared 2-core"
            " machine, niced: the seconds are indicative only)."
            f" {args.cards:,} cards with a pool of {args.pool} indexes each"
            f" ({args.cards * args.pool:,} entries); the list is the smallest power of two"
            " the pools fill to at most 2/3 (2 bits an entry), built with"
            " `token_service.StatusList` and signed with `sign_status_list_cwt` (zlib level"
            " 9, as served). A pool moves all together: a card that is not valid sets all"
            " its entries, so the compressed size grows with the pool.",
            "",
            "| cards not valid | pool | entries | raw bytes | zlib level | zlib bytes"
            " | signed CWT bytes | build s | compress (and sign) s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"To hold {args.cards:,} cards set `SSC_STATUS_LIST_SIZE="
            f"{list_size(args.cards, args.pool)}`;"
            " the default (16,777,216 entries, 4 MiB raw) holds 1,048,576 pools of 16, so"
            " about 500,000 cards at half fill. The signed list is what every offline scanner"
            " downloads whole (bundles embed it) and what other issuers fetch every TTL"
            " (`SSC_STATUS_LIST_FETCH_MAX_BYTES`, the largest we accept from them).",
        ]
    )
    print(section)
    if not args.no_write:
        write_section(TITLE, section)


def _signed(status_list: StatusList, keyring: KeyRing) -> bytes:
    return sign_status_list_cwt(
        status_list,
        uri="https://ecard.example/v1/status-lists/360000",
        keyring=keyring,
        issued_at=int(time.time()),
        expires_in=86_400,
        ttl=300,
    )


if __name__ == "__main__":
    main()
