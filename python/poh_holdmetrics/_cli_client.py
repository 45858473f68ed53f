"""The command line's HTTP client for a running daemon (holdmetricsd): GET a JSON document,
with the bearer token of ``auth_token_file`` when set. Every failure (unreachable, an HTTP
error, not JSON) is a CliError naming the URL. Standard library only (urllib)."""

from __future__ import annotations

import json
from pathlib import Path
TYPE_CHECKING = False  # typing is not imported at run time: import stays fast
if TYPE_CHECKING:
    from typing import Any

from ._cli_errors import CliError


def get_json(url: str, settings: Any, timeout: float) -> Any:
    """The JSON document at url; settings gives auth_token_file."""
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    if settings.auth_token_file:
        try:
            token = Path(settings.auth_token_file).read_text().strip()
        except OSError as e:
            raise CliError(f"auth_token_file {settings.auth_token_file}: {e.strerror or e}") from None
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace").strip()
        try:
            body = json.loads(body).get("error", body)
        except (ValueError, AttributeError):
            pass
        raise CliError(f"{url}: HTTP {e.code}: {body}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CliError(f"{url}: cannot reach the daemon ({reason}); is holdmetricsd running? "
                       "(start it with `poh-holdmetrics serve`, or point --url at it)") from None
    except ValueError as e:
        raise CliError(f"{url}: not a JSON response: {e}") from None


def get_rows(base: str, path: str, params: dict[str, Any], settings: Any, timeout: float) -> list[Any]:
    """The JSON list of rows at base + path (``/v1/top``, ``/v1/stats``), the params that
    are not None as its query string."""
    from urllib.parse import urlencode
    q = {k: v for k, v in params.items() if v is not None}
    url = base.rstrip("/") + path + ("?" + urlencode(q) if q else "")
    rows = get_json(url, settings, timeout)
    if not isinstance(rows, list):
        raise CliError(f"{url}: unexpected response (expected a list of rows)")
    return rows
