"""``stepstone serve``: the JSON API over the client, Server-Sent Events, signed webhooks.

``create_app`` (in :mod:`stepstone.web.app`) builds the ASGI app; it needs the ``web`` extra
(``pip install 'stepstone[web]'``: Starlette and uvicorn). The bindings and signature checks
import no web framework, so ``stepstone webhook`` works without the extra.
"""

from stepstone.web.bindings import HookEntry, WebhookBinding
from stepstone.web.settings import ServeSettings
from stepstone.web.signatures import PRESETS, REPLAY_WINDOW_S, sign

__all__ = ["PRESETS", "REPLAY_WINDOW_S", "HookEntry", "ServeSettings", "WebhookBinding", "sign"]
