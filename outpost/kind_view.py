"""The embedded outpost's link as its LDAP or RADIUS server sees it (``ak server``, core/outposts/embedded.py).

The embedded outpost is a proxy outpost: its link's snapshot holds proxy providers. The LDAP and RADIUS providers
bound to it are fetched on each of the link's refreshes (``CoreLink.provider_configs``) into a snapshot of their
own; everything else (authenticate, paging, SESSION_END) is the link's.
"""

from __future__ import annotations

import logging
from typing import Any

from outpost.core_link import Callback, CoreLink, Snapshot

LOGGER = logging.getLogger("gatehouse.outpost.embedded")


class KindView:
    """``link`` seen as an outpost of ``kind``: ``snapshot`` holds that kind's providers; ``on_refresh`` callbacks
    run after it is swapped (a failed fetch keeps the last one and calls nobody)."""

    def __init__(self, link: CoreLink, kind: str):
        self.link, self.kind = link, kind
        self.snapshot: Snapshot | None = None
        self.on_refresh: list[Callback] = []
        link.on_refresh.append(self._refreshed)

    def __getattr__(self, name: str) -> Any:  # the link's calls to the core, unchanged
        return getattr(self.link, name)

    async def _refreshed(self, snapshot: Snapshot) -> None:
        try:
            providers = await self.link.provider_configs(self.kind)
        except Exception as exc:  # the proxy side of the refresh stands; this kind keeps its last providers
            LOGGER.warning(f"embedded outpost: {self.kind.upper()} providers not fetched", extra={"reason": str(exc)})
            return
        self.snapshot = Snapshot(outpost=snapshot.outpost, providers=tuple(providers), generation=snapshot.generation)
        await self.link._notify(self.on_refresh, self.snapshot)
