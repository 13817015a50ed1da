"""What the local server refuses before a request reaches the model, independent of the HTTP layer.

Every check takes plain strings (header values, the bound address) and raises ApiError with the
status and OpenAI-style code the client gets:

- a Host that is not the address the server is bound to (421): a web page that rebinds its own
  DNS name to 127.0.0.1 sends its own name as Host, so a name other than localhost is refused;
- an Origin that is not the server's own (403): a browser sends one with every cross-origin POST;
- a body that is not declared JSON (415): text/plain, form and multipart bodies are what a web page
  can send to any address without asking the server first (CORS "simple requests");
- a Content-Length that is not one plain decimal number (400): Python's int() would take "4_9",
  " +49" or non-ASCII digits, and a server that reads lengths differently from a proxy can be fed a
  second request inside a body;
- a workflow name that is empty of printable text, holds control or escape characters, is longer
  than MAX_WORKFLOW_CHARS or takes a reserved prefix (400).
"""

from __future__ import annotations

import ipaddress
import re
from email import errors
from email.message import Message

from app.core.serve.openai_api import ApiError

MAX_WORKFLOW_CHARS = 200
RESERVED_WORKFLOW_PREFIXES = ("lab:",)  # written by Stillroom itself (the distillation lab)
LOOPBACK_NAMES = ("localhost",)
JSON_MEDIA_TYPE = "application/json"
_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII digits only; 18 digits cannot overflow anything
_HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^:\[\]]+))(?::(?P<port>[0-9]{1,5}))?")
_HEADER_DEFECTS = (errors.MissingHeaderBodySeparatorDefect, errors.FirstHeaderLineIsContinuationDefect,
                   errors.MisplacedEnvelopeHeaderDefect)  # lines the header parser could not take
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP field name (RFC 9110 token)


def is_token(name: str) -> bool:
    """True when `name` is a valid HTTP header field name."""
    return _TOKEN.fullmatch(name) is not None


def _is_unspecified(bound_host: str) -> bool:
    try:
        return ipaddress.ip_address(bound_host).is_unspecified
    except ValueError:
        return False


def _host_allowed(host: str, bound_host: str) -> bool:
    name = host.lower()
    if name in LOOPBACK_NAMES or name == bound_host.lower():
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False  # a DNS name other than localhost: what a rebinding page sends
    if address.is_loopback or _is_unspecified(bound_host):
        return True  # an address literal cannot be rebound
    try:
        return address == ipaddress.ip_address(bound_host)
    except ValueError:
        return False


def check_host(value: str | None, bound_host: str, port: int) -> None:
    """Refuse (421) a Host header that does not name this server: localhost, a loopback address,
    or the bound address, with no port or the bound port. A missing Host passes (HTTP/1.0 tools;
    browsers always send one)."""
    if value is None:
        return
    match = _HOST.fullmatch(value.strip())
    allowed = False
    if match is not None:
        host = match.group("v6") or match.group("name") or ""
        given_port = match.group("port")
        allowed = (given_port is None or int(given_port) == port) and _host_allowed(host, bound_host)
    if not allowed:
        raise ApiError(421, f"this server answers only to its own address (http://127.0.0.1:{port}, "
                            f"http://localhost:{port}); the request was addressed to "
                            f"'{_printable(value)}', which a web page rebinding its DNS name would send",
                       None, "host_not_allowed")


def check_origin(value: str | None, bound_host: str, port: int) -> None:
    """Refuse (403) a browser request from any origin other than the server's own address."""
    if value is None:
        return
    scheme, sep, rest = value.strip().partition("://")
    if sep and scheme.lower() == "http" and "/" not in rest and rest:
        try:
            check_host(rest, bound_host, port)
            if ":" in rest.rsplit("]", 1)[-1]:  # an origin names its port unless it is the default
                return
        except ApiError:
            pass
    raise ApiError(403, f"cross-origin requests are refused: a web page at '{_printable(value)}' may not use "
                        "this local server (call it from a program, not a browser page)", None,
                   "cross_origin_refused")


def check_json_body(content_type: str | None) -> None:
    """Refuse (415) a body not declared as application/json."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != JSON_MEDIA_TYPE:
        shown = _printable(content_type) if content_type else "none"
        raise ApiError(415, f"send the body as JSON with 'Content-Type: {JSON_MEDIA_TYPE}' (got {shown}); "
                            "other types are refused because any web page can send them",
                       None, "unsupported_media_type")


def content_length(values: list[str] | None) -> int:
    """The body length from the request's Content-Length header(s): 0 when there is none; 400 when
    it is not one plain decimal number (repeats of the same number are tolerated)."""
    lengths = {value.strip(" \t") for value in values or []}
    if not lengths:
        return 0
    if len(lengths) != 1 or _DIGITS.fullmatch(text := lengths.pop()) is None:
        raise ApiError(400, "invalid Content-Length: it must be one whole number of bytes, written in "
                            "decimal digits only", None, "invalid_request")
    return int(text)


def check_framing(headers: Message, method: str, version: str) -> int:
    """The body length of a request whose headers http.server has parsed, after refusing (400) what
    it lets through: header lines it could not parse (it takes them, and all that follows, for the
    body, so a "Content-Length : 5" line vanishes), invalid field names, folded or control-character
    values, a missing (HTTP/1.1) or repeated Host, a Content-Length that is not plain digits, and a
    body on a GET or HEAD (else read as the next request). A chunked body gets 411."""
    payload = headers.get_payload()
    if any(isinstance(d, _HEADER_DEFECTS) for d in headers.defects) or (isinstance(payload, str) and payload):
        raise ApiError(400, "a header line could not be parsed (no colon, or a space before it)", None,
                       "invalid_request")
    for name, value in headers.items():
        if not is_token(name) or any(c in value for c in "\r\n\0"):
            raise ApiError(400, "invalid header: a field name must be a token and a value must fit on one "
                                "line without control characters", None, "invalid_request")
    hosts = headers.get_all("Host") or []
    if len(hosts) > 1 or (not hosts and version == "HTTP/1.1"):
        raise ApiError(400, "an HTTP/1.1 request needs exactly one Host header", None, "invalid_request")
    bodiless = method in ("GET", "HEAD")
    if headers.get("Transfer-Encoding"):
        if bodiless:
            raise ApiError(400, f"a {method} request carries no body", None, "invalid_request")
        raise ApiError(411, "send the body with a Content-Length", None, "length_required")
    length = content_length(headers.get_all("Content-Length"))
    if bodiless and length:
        raise ApiError(400, f"a {method} request carries no body", None, "invalid_request")
    return length


def check_workflow(name: str) -> str:
    """`name` stripped, if a client may file requests under it; otherwise 400 saying why."""
    name = name.strip()
    if len(name) > MAX_WORKFLOW_CHARS:
        raise ApiError(400, f"the workflow name is {len(name)} characters long; at most {MAX_WORKFLOW_CHARS} "
                            "are allowed", None, "invalid_workflow")
    if not name.isprintable():
        raise ApiError(400, "the workflow name holds control, escape or other non-printable characters",
                       None, "invalid_workflow")
    reserved = next((p for p in RESERVED_WORKFLOW_PREFIXES if name.lower().startswith(p)), None)
    if reserved:
        raise ApiError(400, f"workflow names starting with '{reserved}' are reserved for Stillroom's own runs",
                       None, "invalid_workflow")
    return name


def _printable(text: str, limit: int = 80) -> str:
    """`text` shortened and with anything non-printable escaped, fit to quote in an error message."""
    shown = text[:limit].encode("unicode_escape").decode("ascii") if not text[:limit].isprintable() else text[:limit]
    return shown + ("..." if len(text) > limit else "")
