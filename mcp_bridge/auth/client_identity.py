"""Who the bridge is at an authorization server: the client identity a login uses
(`ClientRegistration`, filed in the vault under its issuer and never used with another AS),
the client a user configured by hand (`PreRegisteredClient`), and how each was obtained
(`RegistrationMethod`). Records only: registration.py decides which one a login uses,
dynamic_registration.py makes one by RFC 7591.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mcp_bridge.auth.errors import AuthResponseInvalid
from mcp_bridge.auth.http_step import stored_time

if TYPE_CHECKING:
    # A type only: importing it loads cryptography, which a daemon serving servers
    # without OAuth never needs (~9 MB).
    from mcp_bridge.auth.client_assertion import ClientAssertions

__all__ = [
    "SUPPORTED_AUTH_METHODS",
    "ClientRegistration",
    "PreRegisteredClient",
    "RegistrationMethod",
]

# Client authentication at the token endpoint that a registration (dynamic, or configured
# for a browser login) may ask of us (RFC 6749 §2.3.1; `none` is OAuth 2.1's public
# client). private_key_jwt only with a key the user gives, for the grants without a
# browser (machine_login.py), which build their registrations themselves.
SUPPORTED_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")


class RegistrationMethod(enum.Enum):
    PRE_REGISTERED = "pre-registered"  # from the config file
    CIMD = "cimd"  # client id metadata document: the client id is our document's URL
    DCR = "dcr"  # RFC 7591 dynamic client registration


@dataclass(frozen=True, slots=True)
class PreRegisteredClient:
    """A client id (and maybe secret) the user configured. `issuer`, when known, binds it
    to one AS; without it the credentials are used with whatever AS discovery finds."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    issuer: str | None = None
    token_endpoint_auth_method: str | None = None  # None: chosen from the AS metadata


@dataclass(frozen=True, slots=True)
class ClientRegistration:
    """A client identity at one authorization server; the vault files it under `issuer`."""

    issuer: str
    client_id: str
    method: RegistrationMethod
    token_endpoint_auth_method: str  # one of SUPPORTED_AUTH_METHODS, or private_key_jwt
    redirect_uris: tuple[str, ...] = ()
    client_secret: str | None = field(default=None, repr=False)
    client_secret_expires_at: float | None = None  # epoch seconds; None: never (RFC 7591 "0")
    # private_key_jwt: what signs the assertions. Never stored: the key stays in the user's
    # file, so a registration read back from the vault has none until the grant that
    # uses it puts it back (machine_login.py).
    assertions: ClientAssertions | None = field(default=None, repr=False, compare=False)

    def is_for(self, issuer: str) -> bool:
        """Credentials are bound to the issuer that issued them (MCP 2026-07-28, Client
        Registration: keyed by issuer, never reused with another AS)."""
        return self.issuer == issuer

    def is_usable(self, issuer: str, redirect_uri: str, *, now: float) -> bool:
        """Whether this stored registration can be used for a login at `issuer` with
        `redirect_uri`, or a new one is needed (other AS, expired secret, and for DCR a
        redirect URI the AS was not told about: many ASes match them exactly)."""
        if not self.is_for(issuer):
            return False
        if self.client_secret_expires_at is not None and self.client_secret_expires_at <= now:
            return False
        return self.method is not RegistrationMethod.DCR or redirect_uri in self.redirect_uris

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "method": self.method.value,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "redirect_uris": list(self.redirect_uris),
        }
        if self.client_secret is not None:
            doc["client_secret"] = self.client_secret
        if self.client_secret_expires_at is not None:
            doc["client_secret_expires_at"] = self.client_secret_expires_at
        return doc

    @classmethod
    def from_json(cls, doc: object) -> ClientRegistration:
        """Read a vault record back; AuthResponseInvalid if it is not one of ours."""
        try:
            if not isinstance(doc, dict):
                raise TypeError("not an object")
            secret = doc.get("client_secret")
            expires = doc.get("client_secret_expires_at")
            record = cls(
                issuer=_text(doc["issuer"]),
                client_id=_text(doc["client_id"]),
                method=RegistrationMethod(doc["method"]),
                token_endpoint_auth_method=_text(doc["token_endpoint_auth_method"]),
                redirect_uris=tuple(_text(uri) for uri in doc.get("redirect_uris", [])),
                client_secret=None if secret is None else _text(secret),
                client_secret_expires_at=None if expires is None else stored_time(expires),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AuthResponseInvalid(
                "The stored client registration is damaged", next_step="Log in again"
            ) from exc
        return record


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value
