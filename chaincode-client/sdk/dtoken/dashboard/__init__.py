"""The dashboard: a small live web page for one bank, or the regulator.

``dtoken --bank hkbank dashboard`` serves, on 127.0.0.1 only, what that organization may see:
its supply per token, the accounts and balances it may read, transfers waiting (incoming and
outgoing), obligations and settlements, recent blocks and chaincode events, updated live
(server-sent events) as the organization's peer commits blocks.

What it owns: the view (:mod:`dtoken.dashboard.view`, the SDK calls that make the page's
data), the live state (:mod:`dtoken.dashboard.live`, the followers that keep it current), the
web server (:mod:`dtoken.dashboard.server`, Starlette served by uvicorn) and the static page
(``static/``).
What it must not do: read anything but through the bank SDK as the organization's own client
identity, listen on another address than 127.0.0.1, or write to the ledger. See
``docs/dashboard.md``.
"""

from dtoken.dashboard.server import HOST, Dashboard
from dtoken.dashboard.view import identity_view, ledger_view

__all__ = ["HOST", "Dashboard", "identity_view", "ledger_view"]
