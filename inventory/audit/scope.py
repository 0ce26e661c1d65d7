"""The scope guard: Vigie probes only addresses inside the configured networks.

Checked before anything is sent: an address outside the scope gets `audit.out-of-scope` and no
packet, whatever the asset form says.
"""

from __future__ import annotations

from collections.abc import Iterable

import netaddr


class AuditScope:
    """A set of networks (netaddr IPSet) that audits may touch."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = netaddr.IPSet(netaddr.IPNetwork(n) for n in networks)

    def __contains__(self, address: object) -> bool:
        try:
            ip = netaddr.IPAddress(str(address))
        except (netaddr.AddrFormatError, ValueError, TypeError):
            return False
        if ip.version == 6 and ip.is_ipv4_mapped():
            ip = ip.ipv4()
        return ip in self.networks

    def split(
        self, addresses: Iterable[netaddr.IPAddress]
    ) -> tuple[list[netaddr.IPAddress], list[netaddr.IPAddress]]:
        """(addresses that may be probed, addresses that must not be)."""
        inside: list[netaddr.IPAddress] = []
        outside: list[netaddr.IPAddress] = []
        for address in addresses:
            (inside if address in self else outside).append(address)
        return inside, outside
