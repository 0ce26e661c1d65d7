"""The zone policy of `port.unexpected-open`: ports a zone allows are not findings there, and a
zone can make an undeclared port more serious; real peers on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

from inventory.audit import audit
from inventory.audit.probes.tcp import UNEXPECTED_OPEN
from inventory.models import Asset, AssetAddress
from inventory.services.audits import target_for
from inventory.settings import load_settings
from tests.audit import peers


def settings_with(zones: dict[str, Any], ports: list[int]) -> Any:
    return load_settings({"audit": {"zones": zones}}, environ={}).audit.model_copy(
        update={"default_ports": ports, "connect_timeout": 1.0, "read_timeout": 1.0}
    )


def asset_at(host: str, zone: str, services: list[dict[str, Any]] | None = None) -> Asset:
    import netaddr

    asset = Asset(name="ct-scanner", name_key="ct-scanner", zone=zone)
    asset.expected_services = services or []
    asset.addresses = [AssetAddress(address=netaddr.IPAddress(host), position=0)]
    return asset


def unexpected_findings(zone: str, zones: dict[str, Any]) -> list[Any]:
    async def scenario() -> Any:
        web, host, web_port = await peers.serve(peers.greeting(b""))
        ssh, _, ssh_port = await peers.serve(peers.greeting(b"SSH-2.0-OpenSSH_9.2\r\n"), host=host)
        policies = {
            name: {
                "allowed_ports": [web_port] if policy.get("allow_web") else [],
                **{k: v for k, v in policy.items() if k != "allow_web"},
            }
            for name, policy in zones.items()
        }
        settings = settings_with(policies, [web_port, ssh_port])
        async with web, ssh:
            report = await audit(target_for(asset_at(host, zone), settings), settings)
        return [f for f in report.findings if f.check == UNEXPECTED_OPEN], web_port, ssh_port

    return asyncio.run(scenario())


def test_a_port_the_zone_allows_is_not_unexpected_there():
    findings, web_port, ssh_port = unexpected_findings(
        "Radiology", {"radiology": {"allow_web": True}}
    )
    assert {f.port for f in findings} == {ssh_port}  # the web port is allowed in that zone
    assert findings[0].severity == "medium"


def test_the_same_ports_in_a_zone_without_policy_are_both_findings():
    findings, web_port, ssh_port = unexpected_findings("office", {"radiology": {"allow_web": True}})
    assert {f.port for f in findings} == {web_port, ssh_port}


def test_a_zone_can_make_an_undeclared_port_more_serious():
    findings, _, ssh_port = unexpected_findings(
        "dmz", {"dmz": {"allow_web": True, "unexpected_severity": "high"}}
    )
    assert [(f.port, f.severity) for f in findings] == [(ssh_port, "high")]


def test_zone_names_in_the_config_ignore_case_and_bad_policies_are_refused():
    import pytest

    from inventory.errors import ConfigError

    settings = load_settings({"audit": {"zones": {"DMZ": {"allowed_ports": [443]}}}}, environ={})
    assert settings.audit.zone_policy("dmz").allowed_ports == [443]
    assert settings.audit.zone_policy("Dmz ").allowed_ports == [443]
    assert settings.audit.zone_policy("office").allowed_ports == []
    with pytest.raises(ConfigError, match="ports out of range"):
        load_settings({"audit": {"zones": {"dmz": {"allowed_ports": [70000]}}}}, environ={})
    with pytest.raises(ConfigError, match="unexpected_severity"):
        load_settings({"audit": {"zones": {"dmz": {"unexpected_severity": "severe"}}}}, environ={})
