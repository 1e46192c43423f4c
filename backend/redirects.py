"""Where we may send a browser back to: only pages of our own frontends."""

from urllib.parse import urlsplit


def is_allowed_redirect(url: str, frontend_origins: list[str]) -> bool:
    """True when `url` is an absolute http(s) URL on one of the frontend origins."""
    if len(url) > 2048 or any(ch in url for ch in "\\\r\n\t\x00 "):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        return False
    if parts.password is not None:
        return False
    default = 443 if parts.scheme == "https" else 80
    origin = f"{parts.scheme}://{parts.hostname}"
    if port is not None and port != default:
        origin += f":{port}"
    return origin in frontend_origins
