"""Errors of channel apps and their links."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, NotFound, Unauthorized


class ChannelNotFound(NotFound):
    code = "channel-not-found"
    title = "No such channel"


class ChannelLinkNotFound(NotFound):
    code = "channel-link-not-found"
    title = "No such linked channel"


class LinkRequestNotFound(NotFound):
    code = "link-request-not-found"
    title = "No such link request, or it expired"


class LinkRequestNotApproved(Conflict):
    code = "link-request-not-approved"
    title = "The holder has not approved this link request (yet)"


class ChannelSuspended(Forbidden):
    code = "channel-suspended"
    title = "The channel is suspended"


class ChannelSessionRevoked(Unauthorized):
    code = "session-revoked"
    title = "The channel's session was revoked"


class InvalidChannelRefreshToken(Unauthorized):
    code = "invalid-refresh-token"
    title = "Invalid refresh token"
