"""Bodies of the OpenID Connect provider: relying-party registration, the holder's consents
and device sign-ins (JSON), and the form bodies of the protocol endpoints."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.clients import Name
from api.schemas.common import UtcDateTime
from app.media_types import media_type_of
from app.oidc.clients import GRANT_TYPES
from app.oidc.errors import InvalidOAuthRequest
from app.oidc.models import ClientAuthMethod, SubjectType
from app.oidc.scopes import SCOPES

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 32

ScopeName = Annotated[str, StringConstraints(pattern="^(" + "|".join(SCOPES) + ")$")]
RedirectUri = Annotated[str, StringConstraints(min_length=8, max_length=500)]
UserCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{4}-?[A-Za-z]{4}$")]
LogoUri = Annotated[
    str, StringConstraints(pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[!-~]*$", max_length=500)
]
ClientIdText = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class RelyingPartyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Display name on the consent page", examples=["赣服通"])
    logo_uri: LogoUri | None = Field(default=None, description="https logo for the consent page")
    redirect_uris: list[RedirectUri] = Field(
        min_length=1, max_length=10, description="Exact redirect URIs (no prefix matching)"
    )
    post_logout_redirect_uris: list[RedirectUri] = Field(default_factory=list, max_length=10)
    scopes: list[ScopeName] = Field(
        min_length=1, max_length=len(SCOPES), examples=[["openid", "profile", "ssc_card"]]
    )
    token_endpoint_auth_method: ClientAuthMethod = ClientAuthMethod.client_secret_basic
    jwks: dict[str, Any] | None = Field(
        default=None, description="The client's public keys, with private_key_jwt only"
    )
    sector_identifier: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = (
        Field(default=None, description="Pairwise subjects are per sector (default: redirect host)")
    )
    subject_type: SubjectType = SubjectType.pairwise
    grant_types: (
        list[
            Annotated[
                str,
                StringConstraints(pattern="^(" + "|".join(GRANT_TYPES).replace(".", r"\.") + ")$"),
            ]
        ]
        | None
    ) = None


class RelyingPartyOut(BaseModel):
    client_id: str
    name: str
    logo_uri: str | None
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    scopes: list[str]
    token_endpoint_auth_method: ClientAuthMethod
    sector_identifier: str
    subject_type: SubjectType
    grant_types: list[str]
    enabled: bool
    created_at: UtcDateTime


class RelyingPartyCreated(RelyingPartyOut):
    client_secret: str | None = Field(
        description="Shown once; only its hash is stored (null for private_key_jwt and none)"
    )


class ConsentOut(BaseModel):
    client_id: str
    client_name: str
    scopes: list[str]
    granted_at: UtcDateTime


class DeviceRequestOut(BaseModel):
    user_code: str
    client_id: str
    client_name: str
    logo_uri: str | None
    scopes: list[str]
    expires_in: int


class DeviceDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
    decision: Annotated[str, StringConstraints(pattern="^(approve|deny)$")]
    scopes: list[ScopeName] | None = Field(
        default=None, description="The scopes granted (default: all asked); openid always"
    )


class DeviceDecided(BaseModel):
    decision: str
    scopes: list[str]


def read_form(
    body: bytes, content_type: str | None, *, repeatable: frozenset[str] = frozenset()
) -> dict[str, str | list[str]]:
    """A form body; a parameter given twice is refused (RFC 6749 3.1) unless `repeatable`.

    :raises InvalidOAuthRequest: not a well-formed form.
    """
    media_type = media_type_of(content_type)
    if media_type != FORM_MEDIA_TYPE:
        raise InvalidOAuthRequest(f"the body must be {FORM_MEDIA_TYPE}")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidOAuthRequest("the body is not a well-formed form") from None
    form: dict[str, str | list[str]] = {}
    for name, value in pairs:
        if name in repeatable:
            listed = form.setdefault(name, [])
            assert isinstance(listed, list)
            listed.append(value)
        elif name in form:
            raise InvalidOAuthRequest(f"parameter {name!r} is repeated")
        else:
            form[name] = value
    return form


def single_values(form: dict[str, str | list[str]]) -> dict[str, str]:
    return {name: value for name, value in form.items() if isinstance(value, str)}
