"""Benefit payments: paying departments submit disbursements (one JSON object, or bulk as
`application/jsonl`), holders read their payments, administrators reconcile a bank's
statement and register paying departments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import ValidationError
from starlette.responses import Response

from api.auth import CurrentAdmin, CurrentHolder, CurrentPayer
from api.deps import RuntimeDep, SessionDep
from api.json_bodies import InvalidJson, StrictJsonRoute, loads
from api.problems import domain_problem
from api.schemas.banks import BANK_CODE
from api.schemas.payments import (
    MAX_LINES,
    BulkResultOut,
    DisbursementIn,
    DisbursementOut,
    HolderPaymentOut,
    LineResultOut,
    MismatchOut,
    PayerIn,
    PayerOut,
    ReconciliationOut,
    StatementIn,
)
from app.errors import DomainError
from app.media_types import media_type_of
from app.payments import service
from app.payments.errors import InvalidDisbursement, TooManyLines, UnsupportedMediaType
from app.payments.models import Disbursement, PaymentKind
from app.payments.service import LineResult, PaymentOrder, StatementCredit

router = APIRouter(tags=["payments"], route_class=StrictJsonRoute)
_PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
JSONL = ("application/jsonl", "application/x-ndjson", "application/jsonlines")
MAX_PAGE = 500


def _order(raw: bytes) -> PaymentOrder:
    """:raises InvalidDisbursement: not JSON, or not a valid disbursement."""
    try:
        body = DisbursementIn.model_validate(loads(raw))
    except InvalidJson as error:
        raise InvalidDisbursement(f"not one JSON object: {error.msg}") from None
    except ValidationError as error:
        faults = [
            {"loc": [str(part) for part in item["loc"]], "msg": item["msg"]}
            for item in error.errors()
        ]
        raise InvalidDisbursement("not a valid disbursement", errors=faults) from None
    return PaymentOrder(
        payment_id=body.payment_id,
        card_number=body.card_number,
        kind=body.kind,
        amount_fen=body.amount_fen,
        value_date=body.value_date,
        memo=body.memo,
    )


def _disbursement_out(row: Disbursement) -> DisbursementOut:
    return DisbursementOut(
        id=row.id,
        payment_id=row.payment_id,
        kind=PaymentKind(row.kind),
        amount_fen=row.amount_fen,
        value_date=row.value_date,
        bank_code=row.bank_code,
        account=row.account_masked,
        rerouted=row.rerouted,
        created_at=row.created_at,
    )


def _line_out(result: LineResult) -> LineResultOut:
    return LineResultOut(
        line=result.line,
        outcome="created"
        if result.outcome == "created"
        else "duplicate"
        if result.outcome == "duplicate"
        else "error",
        payment_id=result.payment_id,
        disbursement=None
        if result.disbursement is None
        else _disbursement_out(result.disbursement),
        error=None if result.error is None else domain_problem(result.error),
    )


_SINGLE_SCHEMA = {
    key: value
    for key, value in DisbursementIn.model_json_schema(
        ref_template="#/components/schemas/{model}"
    ).items()
    if key != "$defs"
}
"""The body of one payment; `PaymentKind` is in the components (`DisbursementOut` uses it)."""
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _SINGLE_SCHEMA},
            "application/jsonl": {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": f"One disbursement object per line, at most {MAX_LINES}",
                }
            },
        },
    }
}


@router.post(
    "/v1/disbursements",
    summary="As a paying department: pay to a card (one JSON object), or many "
    "(`application/jsonl`, a result per line)",
    response_class=Response,
    openapi_extra=_BODY_DOC,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "description": "A single payment already made with this id (the same payment), or "
            "the per-line results of a bulk submission (good lines stored, bad ones reported)",
            "model": BulkResultOut,
        },
        201: {
            "description": "The payment was made",
            "model": DisbursementOut,
        },
        409: {"description": "payment-id-reused, no-bank-account", **_PROBLEM},
        415: {"description": "unsupported-media-type", **_PROBLEM},
        422: {"description": "invalid-disbursement, payee-not-found", **_PROBLEM},
    },
)
async def disburse(
    request: Request, payer: CurrentPayer, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Idempotent by `payment_id`: the same payment again answers the first one (200); the id
    with other content is refused (409). Paid to the card's account valid at `value_date`; if
    the holder changed bank since, to the new account, and the holder is told."""
    media = media_type_of(request.headers.get("content-type"))
    raw = await request.body()
    if media in JSONL:
        lines = [line for line in raw.split(b"\n")]
        if len(lines) > MAX_LINES + 1:
            raise TooManyLines(f"at most {MAX_LINES} lines per submission")
        orders: list[tuple[int, PaymentOrder | DomainError]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                orders.append((number, _order(line)))
            except DomainError as error:
                orders.append((number, error))
        if not orders:
            raise InvalidDisbursement("no line holds a disbursement")
        results = await service.disburse(session, runtime, payer, orders)
        body = BulkResultOut(
            created=sum(1 for r in results if r.outcome == "created"),
            duplicates=sum(1 for r in results if r.outcome == "duplicate"),
            errors=sum(1 for r in results if r.outcome == "error"),
            results=[_line_out(result) for result in results],
        )
        return Response(body.model_dump_json(), media_type="application/json")
    if media != "application/json":
        raise UnsupportedMediaType("send application/json (one) or application/jsonl (bulk)")
    (result,) = await service.disburse(session, runtime, payer, [(1, _order(raw))])
    if result.error is not None:
        raise result.error
    assert result.disbursement is not None
    return Response(
        _disbursement_out(result.disbursement).model_dump_json(),
        status_code=201 if result.outcome == "created" else 200,
        media_type="application/json",
    )


@router.get("/v1/me/payments", summary="Payments to your card, newest value date first")
async def my_payments(
    holder: CurrentHolder,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[HolderPaymentOut]:
    return [
        HolderPaymentOut(
            id=row.id,
            payer=row.payer_id,
            payment_id=row.payment_id,
            kind=PaymentKind(row.kind),
            amount_fen=row.amount_fen,
            value_date=row.value_date,
            bank_code=row.bank_code,
            account=row.account_masked,
            rerouted=row.rerouted,
            memo=row.memo,
        )
        for row in await service.ledger(session, holder, limit)
    ]


@router.post(
    "/v1/admin/payers",
    status_code=status.HTTP_201_CREATED,
    summary="Register a paying department (its API client; the secret is shown once)",
)
async def register_payer(
    body: PayerIn, admin: CurrentAdmin, session: SessionDep, runtime: RuntimeDep
) -> PayerOut:
    issued = await service.register_payer(session, runtime, admin.client_id, body.name)
    return PayerOut(client_id=issued.client.client_id, client_secret=issued.client_secret)


@router.post(
    "/v1/admin/banks/{code}/reconciliations",
    summary="Match a bank's statement of credits against the ledger; list the mismatches",
    responses={404: {"description": "bank-not-found", **_PROBLEM}},
)
async def reconcile(
    code: Annotated[str, Path(pattern=BANK_CODE)],
    body: StatementIn,
    admin: CurrentAdmin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ReconciliationOut:
    report = await service.reconcile(
        session,
        runtime,
        admin.client_id,
        code,
        period_from=body.period_from,
        period_to=body.period_to,
        credits=[
            StatementCredit(c.payer_id, c.payment_id, c.account_number, c.amount_fen, c.value_date)
            for c in body.credits
        ],
    )
    return ReconciliationOut(
        bank_code=report.bank_code,
        period_from=report.period_from,
        period_to=report.period_to,
        ledger_entries=report.ledger_entries,
        statement_credits=report.statement_credits,
        matched=report.matched,
        mismatches=[
            MismatchOut(
                kind=m.kind,
                payer_id=m.payer_id,
                payment_id=m.payment_id,
                ledger_amount_fen=m.ledger_amount_fen,
                statement_amount_fen=m.statement_amount_fen,
            )
            for m in report.mismatches
        ],
    )
