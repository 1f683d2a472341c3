"""Protected-resource (RFC 9728) and authorization-server (RFC 8414 / OIDC Discovery)
metadata, parsed once at the edge into frozen records.

Pure. Documents are hostile input: `from_json` checks every field it keeps (type, size,
URL policy) and raises AuthResponseInvalid saying which field is wrong; past that, nothing
re-checks them. Unknown fields are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

from mcp_bridge.auth.errors import AuthResponseInvalid, UrlRefused
from mcp_bridge.auth.urlpolicy import UrlPolicy, canonical_resource

__all__ = ["AuthServerMetadata", "ProtectedResourceMetadata", "resource_covers"]

_MAX_LIST_ITEMS = 1000
_MAX_STRING_CHARS = 4096


class _Fields:
    """Typed access to one untrusted JSON object; errors name the document and field."""

    def __init__(self, doc: object, what: str, source: str) -> None:
        if not isinstance(doc, dict):
            raise self._invalid_for(what, source, "the response is not a JSON object")
        self.doc: dict[str, Any] = doc
        self.what = what
        self.source = source

    @staticmethod
    def _invalid_for(what: str, source: str, why: str) -> AuthResponseInvalid:
        return AuthResponseInvalid(
            f"The {what} from {source} is unusable: {why}", next_step="Tell the server's owner"
        )

    def invalid(self, why: str) -> AuthResponseInvalid:
        return self._invalid_for(self.what, self.source, why)

    def string(self, key: str) -> str | None:
        value = self.doc.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value or len(value) > _MAX_STRING_CHARS:
            raise self.invalid(f'"{key}" must be a non-empty string')
        return value

    def required_string(self, key: str) -> str:
        value = self.string(key)
        if value is None:
            raise self.invalid(f'"{key}" is missing')
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.doc.get(key)
        if value is None:
            return ()
        if (
            not isinstance(value, list)
            or len(value) > _MAX_LIST_ITEMS
            or not all(isinstance(v, str) and 0 < len(v) <= _MAX_STRING_CHARS for v in value)
        ):
            raise self.invalid(f'"{key}" must be a list of strings')
        return tuple(value)

    def flag(self, key: str) -> bool:
        value = self.doc.get(key, False)
        if not isinstance(value, bool):
            raise self.invalid(f'"{key}" must be true or false')
        return value

    def endpoint(self, key: str, policy: UrlPolicy) -> str | None:
        url = self.string(key)
        return None if url is None else self.required_endpoint(key, policy)

    def required_endpoint(self, key: str, policy: UrlPolicy) -> str:
        url = self.required_string(key)
        try:
            policy.check_fetch(url, role=f'"{key}"')
        except UrlRefused as exc:
            raise self.invalid(exc.what) from exc
        if urlsplit(url).fragment:  # RFC 8414 §2: endpoints carry no fragment
            raise self.invalid(f'"{key}" has a fragment')
        return url


def resource_covers(prm_resource: str, server_resource: str) -> bool:
    """Whether the PRM `resource` identifies the MCP server at `server_resource` (both
    canonical). RFC 9728 §3.3 wants them identical to the URL the well-known suffix was
    inserted into; after the root fallback (MCP PRM discovery) that is the origin, so a same-origin
    `resource` whose path is a whole-segment prefix of the server's path also counts."""
    if prm_resource == server_resource:
        return True
    prm, server = urlsplit(prm_resource), urlsplit(server_resource)
    if (prm.scheme, prm.netloc) != (server.scheme, server.netloc) or prm.query:
        return False
    prefix = prm.path.rstrip("/")
    return server.path == prefix or server.path.startswith(prefix + "/")


@dataclass(frozen=True, slots=True)
class ProtectedResourceMetadata:
    """RFC 9728 §2: which authorization servers protect `resource`, and its scopes."""

    resource: str  # canonical (RFC 8707); the value to send as `resource`
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] = ()
    resource_name: str | None = None

    @classmethod
    def from_json(
        cls, doc: object, *, server_resource: str, policy: UrlPolicy, source: str
    ) -> ProtectedResourceMetadata:
        """Parse and check a PRM document fetched from `source` for the MCP server whose
        canonical resource URI is `server_resource`. A `resource` naming another server is
        refused (RFC 9728 §3.3: such metadata must not be used)."""
        checked = _Fields(doc, "protected resource metadata", source)
        raw_resource = checked.required_string("resource")
        try:
            resource = canonical_resource(raw_resource)
        except UrlRefused as exc:
            raise checked.invalid(f'"resource" is not a usable URL ({exc.what})') from exc
        if not resource_covers(resource, server_resource):
            raise checked.invalid(
                f"it describes {raw_resource!r}, not this server ({server_resource!r}); "
                "RFC 9728 §3.3 forbids using it"
            )
        issuers = checked.strings("authorization_servers")
        if not issuers:
            raise checked.invalid('"authorization_servers" is missing or empty')
        for issuer in issuers:
            try:
                policy.check_fetch(issuer, role="authorization server")
            except UrlRefused as exc:
                raise checked.invalid(exc.what) from exc
        return cls(
            resource=resource,
            authorization_servers=issuers,
            scopes_supported=checked.strings("scopes_supported"),
            resource_name=checked.string("resource_name"),
        )

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "resource": self.resource,
            "authorization_servers": list(self.authorization_servers),
            "scopes_supported": list(self.scopes_supported),
        }
        if self.resource_name is not None:
            doc["resource_name"] = self.resource_name
        return doc

    @classmethod
    def from_vault(
        cls, doc: object, *, server_resource: str, policy: UrlPolicy
    ) -> ProtectedResourceMetadata:
        """Read back `to_json` output, checked as if it came from the network."""
        return cls.from_json(
            doc, server_resource=server_resource, policy=policy, source="the vault"
        )


@dataclass(frozen=True, slots=True)
class AuthServerMetadata:
    """RFC 8414 §2 / OIDC Discovery §3 metadata, the fields an OAuth public client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None = None
    revocation_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    scopes_supported: tuple[str, ...] = ()
    response_types_supported: tuple[str, ...] = ()
    grant_types_supported: tuple[str, ...] = ()
    code_challenge_methods_supported: tuple[str, ...] = ()  # empty: absent, see pkce.py
    # RFC 8414 §2: when absent the default is client_secret_basic.
    token_endpoint_auth_methods_supported: tuple[str, ...] = ("client_secret_basic",)
    # private_key_jwt: the JWS algorithms it verifies client assertions with (RFC 8414 §2);
    # empty: it did not say. The MCP client-credentials extension makes it required.
    token_endpoint_auth_signing_alg_values_supported: tuple[str, ...] = ()
    # Assertion grant profiles it takes, e.g. the ID-JAG's (Identity Assertion JWT
    # Authorization Grant §7.2: how a client learns enterprise-managed authorization works).
    authorization_grant_profiles_supported: tuple[str, ...] = ()
    authorization_response_iss_parameter_supported: bool = False  # RFC 9207 §3
    client_id_metadata_document_supported: bool = False  # CIMD
    # RFC 9449 §5.1: the JWS algorithms it takes DPoP proofs in; empty: it does no DPoP.
    dpop_signing_alg_values_supported: tuple[str, ...] = ()
    # True for the 2025-03-26 fallback: no document was found, endpoints are guessed.
    is_guessed: bool = False

    @classmethod
    def from_json(
        cls, doc: object, *, issuer: str, policy: UrlPolicy, source: str
    ) -> AuthServerMetadata:
        """Parse and check the document fetched from `source`, built from `issuer`. Its
        `issuer` must equal that string exactly (RFC 8414 §3.3, OIDC Discovery §4.3,
        MCP Authorization Server Discovery): no case folding, no trailing-slash leniency."""
        checked = _Fields(doc, "authorization server metadata", source)
        named = checked.required_string("issuer")
        if named != issuer:
            raise checked.invalid(
                f"it names issuer {named!r}, but was fetched for {issuer!r} "
                "(RFC 8414 §3.3: a document for another issuer must not be used)"
            )
        response_types = checked.strings("response_types_supported")
        if response_types and "code" not in response_types:
            raise checked.invalid("it does not support the authorization code flow")
        auth_methods = checked.strings("token_endpoint_auth_methods_supported")
        return cls(
            issuer=issuer,
            authorization_endpoint=checked.required_endpoint("authorization_endpoint", policy),
            token_endpoint=checked.required_endpoint("token_endpoint", policy),
            registration_endpoint=checked.endpoint("registration_endpoint", policy),
            revocation_endpoint=checked.endpoint("revocation_endpoint", policy),
            device_authorization_endpoint=checked.endpoint("device_authorization_endpoint", policy),
            scopes_supported=checked.strings("scopes_supported"),
            response_types_supported=response_types,
            grant_types_supported=checked.strings("grant_types_supported"),
            code_challenge_methods_supported=checked.strings("code_challenge_methods_supported"),
            token_endpoint_auth_methods_supported=auth_methods or ("client_secret_basic",),
            token_endpoint_auth_signing_alg_values_supported=checked.strings(
                "token_endpoint_auth_signing_alg_values_supported"
            ),
            authorization_grant_profiles_supported=checked.strings(
                "authorization_grant_profiles_supported"
            ),
            authorization_response_iss_parameter_supported=checked.flag(
                "authorization_response_iss_parameter_supported"
            ),
            client_id_metadata_document_supported=checked.flag(
                "client_id_metadata_document_supported"
            ),
            dpop_signing_alg_values_supported=checked.strings("dpop_signing_alg_values_supported"),
        )

    @classmethod
    def guessed_for(cls, base_url: str) -> AuthServerMetadata:
        """The 2025-03-26 default endpoints at the MCP server's origin (MCP 2025-03-26,
        Authorization), for a server with neither PRM nor AS metadata. That revision required
        PKCE S256 of every server, so S256 is assumed; DCR is at /register by the same rule."""
        return cls(
            issuer=base_url,
            authorization_endpoint=f"{base_url}/authorize",
            token_endpoint=f"{base_url}/token",
            registration_endpoint=f"{base_url}/register",
            code_challenge_methods_supported=("S256",),
            token_endpoint_auth_methods_supported=("none", "client_secret_post"),
            is_guessed=True,
        )

    def to_json(self) -> dict[str, object]:
        """For the vault: a refresh after a restart must reach the same token endpoint."""
        doc: dict[str, object] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name == "is_guessed" or value is None:
                continue
            doc[spec.name] = list(value) if isinstance(value, tuple) else value
        if self.is_guessed:
            doc["x_mcp_bridge_guessed"] = True
        return doc

    @classmethod
    def from_vault(cls, doc: object, *, policy: UrlPolicy) -> AuthServerMetadata:
        """Read back `to_json` output, re-checked: the vault file is ours but not trusted
        more than the network it came from."""
        issuer = doc.get("issuer") if isinstance(doc, dict) else None
        if not isinstance(issuer, str):
            raise AuthResponseInvalid(
                "The stored authorization server metadata has no issuer", next_step="Log in again"
            )
        parsed = cls.from_json(doc, issuer=issuer, policy=policy, source="the vault")
        if isinstance(doc, dict) and doc.get("x_mcp_bridge_guessed") is True:
            return replace(parsed, is_guessed=True)
        return parsed
