"""`ssc demo`: seeds a holder (card, activated phone, PIN), a venue and its scanner through the
real services, so the README's journey (log in, fetch the QR, verify, verify again) works.

Every run seeds a fresh random person, so it can be repeated. The seeding process may not
share the server's store (the embedded memory store lives in the server process): the server
refills card snapshots and scanner principals from SQL on a miss, and the audit events of the
seeding are written to SQL before the command returns.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from app.audit.consumer import AuditConsumer
from app.cards.documents import DocumentType, mod11_2_check_character
from app.cards.service import ApplicationForm, approve_application, submit_application
from app.catalog.service import refresh_catalog
from app.clients.service import (
    ClientCredentialsRequest,
    create_organisation,
    create_scanner,
    grant_client_credentials,
)
from app.holders.service import Activation, activate
from app.oidc.clients import Registration, register
from app.oidc.models import ClientAuthMethod
from app.runtime import Runtime

DEMO_ACTOR = "ssc-demo"
DEMO_DEVICE = "demo-phone"
DEMO_SCENES = ("hospital", "library", "bus")
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"
"""The demo relying party's redirect URI (nothing needs to listen there: the code is in the
URL the browser is sent to)."""
DEMO_RP_SCOPES = ["openid", "profile", "ssc_card"]


@dataclass(frozen=True, slots=True)
class DemoSeed:
    card_number: str
    document_number: str
    pin: str
    device_id: str
    holder_access_token: str
    scanner_client_id: str
    scanner_client_secret: str
    scanner_access_token: str
    organisation_name: str
    rp_client_id: str
    rp_client_secret: str
    rp_redirect_uri: str


def demo_resident_id() -> str:
    born = date(1970, 1, 1) + timedelta(days=secrets.randbelow(30 * 365))
    body = f"360102{born:%Y%m%d}{secrets.randbelow(1000):03d}"
    return body + mod11_2_check_character(body)


def demo_pin() -> str:
    """Six digits that pass the PIN rules (no runs, no repeats): a fixed, memorable choice."""
    return "284617"


async def seed_demo(runtime: Runtime) -> DemoSeed:
    document_number = demo_resident_id()
    pin = demo_pin()
    async with runtime.database.session() as session:
        submitted = await submit_application(
            session,
            runtime,
            ApplicationForm(
                document_type=DocumentType.resident_id,
                document_number=document_number,
                name="张小三",
                phone=f"139{secrets.randbelow(10**8):08d}",
                bank_code="ICBC",
            ),
        )
        card = submitted.card or await approve_application(
            session, runtime, submitted.application.id, DEMO_ACTOR
        )
        card_number = card.card_number
    holder = await activate(
        runtime,
        Activation(
            card_number=card_number,
            document_number=document_number,
            device_id=DEMO_DEVICE,
            pin=pin,
        ),
    )
    await refresh_catalog(runtime)  # the catalog in effect, not the built-in default
    async with runtime.database.session() as session:
        organisation = await create_organisation(
            session,
            runtime.store,
            DEMO_ACTOR,
            name="南昌市第一医院 (demo)",
            venue_type="hospital",
            region_code=runtime.settings.issuer,
            scenes=list(DEMO_SCENES),
            catalog=runtime.catalog,
        )
        scanner = await create_scanner(
            session,
            runtime.store,
            runtime.secret_hash_key,
            DEMO_ACTOR,
            organisation.id,
            name="demo gate scanner",
            scenes=list(DEMO_SCENES),
            catalog=runtime.catalog,
        )
    async with runtime.database.session() as session:
        grant = await grant_client_credentials(
            session,
            runtime.access_tokens,
            runtime.secret_hash_key,
            ClientCredentialsRequest(
                grant_type="client_credentials",
                client_id=scanner.client.client_id,
                client_secret=scanner.client_secret,
            ),
            scanner_ttl=runtime.settings.scanner_token_ttl,
            admin_ttl=runtime.settings.access_token_ttl,
        )
    async with runtime.database.session() as session:
        relying_party = await register(
            session,
            runtime,
            DEMO_ACTOR,
            Registration(
                name="赣服通 (demo)",
                redirect_uris=[DEMO_REDIRECT_URI],
                scopes=DEMO_RP_SCOPES,
                auth_method=ClientAuthMethod.client_secret_basic,
                post_logout_redirect_uris=["http://127.0.0.1:8765/"],
            ),
        )
    assert relying_party.client_secret is not None
    await AuditConsumer(runtime.store, runtime.database).flush(max_seconds=10)
    return DemoSeed(
        card_number=card_number,
        document_number=document_number,
        pin=pin,
        device_id=DEMO_DEVICE,
        holder_access_token=holder.access_token,
        scanner_client_id=scanner.client.client_id,
        scanner_client_secret=scanner.client_secret,
        scanner_access_token=grant.access_token,
        organisation_name=organisation.name,
        rp_client_id=relying_party.client.client_id,
        rp_client_secret=relying_party.client_secret,
        rp_redirect_uri=DEMO_REDIRECT_URI,
    )


def demo_json(seed: DemoSeed, base_url: str) -> dict[str, object]:
    """The shape scripts and load tests read (issue 4, point 8)."""
    return {
        "base_url": base_url,
        "holder": {
            "card_number": seed.card_number,
            "document_number": seed.document_number,
            "pin": seed.pin,
            "device_id": seed.device_id,
            "access_token": seed.holder_access_token,
        },
        "scanner": {
            "client_id": seed.scanner_client_id,
            "client_secret": seed.scanner_client_secret,
            "access_token": seed.scanner_access_token,
        },
        "relying_party": {
            "client_id": seed.rp_client_id,
            "client_secret": seed.rp_client_secret,
            "redirect_uri": seed.rp_redirect_uri,
        },
    }


def demo_instructions(seed: DemoSeed, base_url: str, png_path: str) -> str:
    """Copy-paste shell commands for the whole journey."""
    login = (
        f'{{"card_number": "{seed.card_number}", "pin": "{seed.pin}", '
        f'"device_id": "{seed.device_id}"}}'
    )
    json_field = "python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])'"
    return f"""\
# Demo data seeded: holder card {seed.card_number} (PIN {seed.pin}, phone "{seed.device_id}"),
# venue "{seed.organisation_name}", scanner {seed.scanner_client_id}.
# Paste these commands into a shell (or pipe this output into `sh`).

# 1. Log in as the holder (card number + PIN on the activated phone)
BASE={base_url}
HOLDER=$(curl -s -X POST $BASE/v1/auth/login -H 'content-type: application/json' \\
  -d '{login}' | {json_field} access_token)

# 2. Fetch the phone's QR code: the token, and the picture as a PNG file
TOKEN=$(curl -s $BASE/v1/me/qr -H "authorization: Bearer $HOLDER" | {json_field} token)
curl -s $BASE/v1/me/qr.png -H "authorization: Bearer $HOLDER" -o {png_path}
echo "QR code written to {png_path}"

# 3. Verify it as the venue's scanner: "valid", with the masked name and a pseudonym
SCANNER={seed.scanner_access_token}
curl -s -X POST $BASE/v1/verify -H "authorization: Bearer $SCANNER" \\
  -H 'content-type: application/json' -d "{{\\"token\\": \\"$TOKEN\\"}}"; echo

# 4. Verify the same code again: "replayed" (a screenshot cannot pass a gate twice)
curl -s -X POST $BASE/v1/verify -H "authorization: Bearer $SCANNER" \\
  -H 'content-type: application/json' -d "{{\\"token\\": \\"$TOKEN\\"}}"; echo

# In a browser (the mobile pages): open {base_url}/h5/activate and enter card number
# {seed.card_number}, document number {seed.document_number} and PIN {seed.pin}.

# The scanner can get a new access token with its client credentials:
curl -s -X POST $BASE/v1/oauth/token -u {seed.scanner_client_id}:{seed.scanner_client_secret} \\
  -d grant_type=client_credentials
"""
