"""Tracking URIs as text: every secret one can hold replaced before it is shown, and the
database file of a SQLite URI."""
from __future__ import annotations

import re
from pathlib import Path

# scheme://user:password@ -> scheme://user:***@ ; scheme://TOKEN@ -> scheme://***@ (a bare user name
# may be a token: GitHub, Hugging Face and many proxies take one there)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^\s:/@?#]*)(?::(?P<secret>[^\s@/?#]*))?@")
# name=value in a query string (?user=u&password=S), a libpq DSN (host=h password=S) or an option
_NAMED = re.compile(r"(?<![A-Za-z0-9_.])(?P<name>[A-Za-z][A-Za-z0-9_.\-]*)=(?P<value>[^&\s#;'\"]+)")
#: words that make a parameter name a secret's (whole words of the name, split at _ . -)
SECRET_WORDS = frozenset({"password", "passwd", "pwd", "pass", "secret", "token", "key", "apikey", "sig",
                          "signature", "credential", "credentials", "auth", "authorization", "sas", "session"})
SECRET_INSIDE = ("password", "passwd", "secret", "token", "apikey", "credential")  # sslpassword, accesstoken
# tokens that need no name to be known: an HTTP bearer token, GitHub and Hugging Face tokens
_TOKENS = re.compile(r"(?i)(?P<head>\bbearer\s+)[A-Za-z0-9._~+/=\-]+|\b(?:gh[pousr]|github_pat|hf)_[A-Za-z0-9_]{20,}")


def secret_name(name: str) -> bool:
    """Whether a parameter called ``name`` holds a secret (``password``, ``X-Amz-Signature``, ``api_key``...)."""
    lowered = name.lower()
    return bool(SECRET_WORDS & set(re.split(r"[_.\-]", lowered))) or any(w in lowered for w in SECRET_INSIDE)


def redact(text: str) -> str:
    """``text`` with every secret of every URI in it replaced by ``***``: a password or a bare
    token in the user-info part, the value of a parameter named like a secret (in a query
    string, a DSN, an option), a bearer token. The one redaction every printed URI goes through."""
    def userinfo(m: re.Match) -> str:
        if m["secret"] is None:  # scheme://NAME@host: NAME may be a token
            return f"{m['head']}***@"
        return f"{m['head']}{m['user']}:***@"

    text = _USERINFO.sub(userinfo, str(text))
    text = _NAMED.sub(lambda m: f"{m['name']}=***" if secret_name(m["name"]) else m[0], text)
    return _TOKENS.sub(lambda m: f"{m['head']}***" if m["head"] else "***", text)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def portable_argument(argument: str, cwd: str | Path | None = None) -> str:
    """A command-line argument as it may be recorded (in a board, a run's tags): an absolute path
    under ``cwd`` (default: the working directory) written relative to it, one under the home
    folder as ``~/...``; in a plain argument, a ``sqlite:///`` URI or an ``--option=`` value.
    Any other argument is returned as it is."""
    import os

    for prefix in ("sqlite:///", ""):
        head, _, value = argument.partition("=") if argument.startswith("--") and "=" in argument else ("", "", argument)
        if not value.startswith(prefix):
            continue
        path = value[len(prefix):]
        if not os.path.isabs(path):
            return argument
        here, home = Path(cwd or os.getcwd()).resolve(), Path.home().resolve()
        resolved = Path(os.path.normpath(path))
        if resolved == here or here in resolved.parents:
            shown = os.path.relpath(resolved, here)
        elif home != Path("/") and home in resolved.parents:
            shown = "~/" + os.path.relpath(resolved, home)
        else:
            return argument
        return f"{head}={prefix}{shown}" if head else f"{prefix}{shown}"
    return argument
