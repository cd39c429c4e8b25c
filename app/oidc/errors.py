"""Errors of the OpenID Connect provider.

Protocol errors carry their RFC 6749 / OIDC Core `error` code: the token, revocation,
introspection and device endpoints answer them as `{"error", "error_description"}` JSON
(RFC 6749 5.2), `/authorize` sends them back to the client's redirect URI (4.1.2.1) once the
client and its redirect URI are known, and shows an error page before that. Errors of the
JSON routes (registration, consents, device approval) are ordinary problem+json.
"""

from __future__ import annotations

from typing import ClassVar

from app.errors import Conflict, DomainError, InvalidRequest, NotFound


class OAuthError(DomainError):
    """A protocol error with its RFC 6749 `error` code."""

    error: ClassVar[str] = "invalid_request"
    code = "oauth-error"
    title = "OAuth protocol error"
    status = 400


class InvalidOAuthRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class LoginRequired(OAuthError):
    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class InvalidToken(OAuthError):
    """RFC 6750: the bearer token of `/userinfo` is unknown, expired or revoked."""

    error = "invalid_token"
    status = 401


class AuthorizationPending(OAuthError):
    error = "authorization_pending"


class SlowDown(OAuthError):
    error = "slow_down"


class ExpiredToken(OAuthError):
    error = "expired_token"


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


class InvalidRedirect(DomainError):
    """The client or its redirect URI is unknown or does not match: never redirect (RFC 6749
    4.1.2.1); the browser is shown an error page instead."""

    code = "invalid-redirect"
    title = "Unknown client or redirect URI"
    status = 400


class InvalidRelyingParty(InvalidRequest):
    code = "invalid-relying-party"
    title = "Invalid relying party registration"


class RelyingPartyNotFound(NotFound):
    code = "relying-party-not-found"
    title = "No such relying party"


class ConsentNotFound(NotFound):
    code = "consent-not-found"
    title = "No consent given to this client"


class DeviceRequestNotFound(NotFound):
    code = "device-request-not-found"
    title = "No pending sign-in with this code"


class DeviceRequestDecided(Conflict):
    code = "device-request-decided"
    title = "This sign-in was already approved or denied"


class CardNotActive(DomainError):
    code = "card-not-active"
    title = "The card is not active"
    status = 403
