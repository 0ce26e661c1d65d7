"""NVD applicability: every rule on hand-made records, then the known answers of the real records
in shared/data/vulns/README.md."""

from __future__ import annotations

import pytest

from inventory.vulns.cpe import CpeError, parse, value_matches
from inventory.vulns.matching import ShapeError, applies, parse_configurations
from tests.vulns.data import full, match, records


def crit(criteria: str, vulnerable: bool = True, **bounds: str) -> dict:
    return {"vulnerable": vulnerable, "criteria": full(criteria), **bounds}


def config(*nodes: dict, operator: str | None = None, negate: bool | None = None) -> dict:
    conf: dict = {"nodes": list(nodes)}
    if operator:
        conf["operator"] = operator
    if negate is not None:
        conf["negate"] = negate
    return conf


def node(*matches: dict, operator: str = "OR", negate: bool = False) -> dict:
    return {"operator": operator, "negate": negate, "cpeMatch": list(matches)}


def hit(configurations: list, *cpes: str, aliases: bool = False):
    return applies(
        parse_configurations(configurations), [parse(full(c)) for c in cpes], aliases=aliases
    )


APP = "cpe:2.3:a:acme:pacs"


# --- hand-made: each rule -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "affected", "safe"),
    [
        (
            {"versionEndExcluding": "1.12.0"},
            ["1.11.3", "1.9.7", "0.1"],
            ["1.12.0", "1.12", "1.12.1"],
        ),
        ({"versionEndIncluding": "3.6.3"}, ["3.6.3", "3.6.2"], ["3.6.4", "3.6.10"]),
        (
            {"versionStartIncluding": "4.5.0", "versionEndExcluding": "4.5.10"},
            ["4.5.0", "4.5.9"],
            ["4.4.99", "4.5.10"],
        ),
        (
            {"versionStartExcluding": "2.0", "versionEndIncluding": "2.2"},
            ["2.0.1", "2.2"],
            ["2.0", "2.2.1"],
        ),
        ({"versionStartIncluding": "8.6"}, ["8.6", "10.0"], ["8.5"]),
        (
            {"versionStartIncluding": "4.0", "versionEndExcluding": "4.0e"},
            ["4.0", "4.0b", "4.0d"],
            ["4.0e", "3.9"],
        ),
        ({"versionEndExcluding": "1.2.3"}, ["1.2.3-beta2", "1.2.3rc1"], ["1.2.3", "1.2.3-1"]),
    ],
)
def test_version_ranges(bounds, affected, safe):
    configurations = [config(node(crit(f"{APP}:*", **bounds)))]
    for version in affected:
        assert hit(configurations, f"{APP}:{version}"), version
    for version in safe:
        assert not hit(configurations, f"{APP}:{version}"), version


def test_exact_any_and_not_applicable_versions():
    exact = [config(node(crit(f"{APP}:2.4.49")))]
    assert hit(exact, f"{APP}:2.4.49")
    assert hit(exact, f"{APP}:2.4.49.0")  # the same version, spelt longer
    assert not hit(exact, f"{APP}:2.4.48")
    assert not hit(exact, APP)  # an unknown version matches only "every version"
    every = [config(node(crit(f"{APP}:*")))]
    assert hit(every, f"{APP}:0.1") and hit(every, APP)
    none = [config(node(crit(f"{APP}:-")))]
    assert hit(none, f"{APP}:-")
    assert not hit(none, f"{APP}:1.0")
    ranged = [config(node(crit(f"{APP}:*", versionEndExcluding="2.0")))]
    assert not hit(ranged, APP) and not hit(ranged, f"{APP}:-")


def test_other_attributes_and_wildcards():
    update = [config(node(crit(f"{APP}:9.8:-")))]
    assert hit(update, f"{APP}:9.8:-")
    assert not hit(update, f"{APP}:9.8:p1")
    assert hit(update, f"{APP}:9.8")  # the asset did not say which update
    target = [config(node(crit(f"{APP}:*:*:*:*:*:windows")))]
    assert hit(target, f"{APP}:1.0:*:*:*:*:windows")
    assert not hit(target, f"{APP}:1.0:*:*:*:*:linux")
    pattern = [config(node(crit(f"{APP}:1.2.*")))]
    assert hit(pattern, f"{APP}:1.2.7") and not hit(pattern, f"{APP}:1.3.0")
    assert not hit([config(node(crit(f"{APP}:*")))], "cpe:2.3:a:acme:pacs_viewer:1.0")
    assert not hit([config(node(crit(f"{APP}:*")))], "cpe:2.3:a:other:pacs:1.0")
    assert not hit([config(node(crit("cpe:2.3:o:acme:pacs:*")))], f"{APP}:1.0")  # part differs


def test_node_operators_and_negate():
    a, b = crit(f"{APP}:*"), crit("cpe:2.3:a:acme:worklist:*")
    assert hit([config(node(a, b))], f"{APP}:1")
    assert not hit([config(node(a, b, operator="AND"))], f"{APP}:1")
    assert hit([config(node(a, b, operator="AND"))], f"{APP}:1", "cpe:2.3:a:acme:worklist:2")
    # A negated platform node: vulnerable unless it runs on the patched OS.
    patched = crit("cpe:2.3:o:acme:os:2.0", vulnerable=False)
    conf = [config(node(a), node(patched, negate=True), operator="AND")]
    assert hit(conf, f"{APP}:1", "cpe:2.3:o:acme:os:1.0")
    assert not hit(conf, f"{APP}:1", "cpe:2.3:o:acme:os:2.0")
    # A negated configuration turns its answer around and never names vulnerable software.
    assert not hit([config(node(a), negate=True)], f"{APP}:1")


def test_running_on_platform_half():
    conf = [
        config(
            node(crit(f"{APP}:*", versionEndExcluding="3.0")),
            node(
                crit("cpe:2.3:o:acme:os:1.0", vulnerable=False),
                crit("cpe:2.3:h:acme:box:-", vulnerable=False),
            ),
            operator="AND",
        )
    ]
    # The platform alone is never a vulnerable match.
    assert not hit(conf, "cpe:2.3:o:acme:os:1.0")
    # A declared OS that is not one of the platforms: not affected.
    assert not hit(conf, f"{APP}:2.0", "cpe:2.3:o:other:os:5")
    # The listed OS: affected, platform matched.
    found = hit(conf, f"{APP}:2.0", "cpe:2.3:o:acme:os:1.0")
    assert found and found.platform == "matched" and found.cpes == [full(f"{APP}:2.0")]
    # Nothing declared about what it runs on: assumed, and said so.
    found = hit(conf, f"{APP}:2.0")
    assert found and found.platform == "assumed"
    assert not hit(conf, f"{APP}:3.0")


def test_platform_is_judged_on_the_other_software_of_its_kind():
    """The platform half is checked against what the asset declares besides the vulnerable
    software: a lone plugin is assumed to run on its host; a plugin declared with another host
    is not affected; an unrelated application says nothing about the operating system."""
    plugin = "cpe:2.3:a:acme:viewer_plugin"
    with_host = [
        config(
            node(crit(f"{plugin}:*", versionEndExcluding="2.0")),
            node(crit("cpe:2.3:a:acme:host:*", vulnerable=False)),
            operator="AND",
        )
    ]
    found = hit(with_host, f"{plugin}:1.0")
    assert found and found.platform == "assumed"
    found = hit(with_host, f"{plugin}:1.0", "cpe:2.3:a:acme:host:5.1")
    assert found and found.platform == "matched"
    assert not hit(with_host, f"{plugin}:1.0", "cpe:2.3:a:other:host:5.1")
    on_windows = [
        config(
            node(crit(f"{APP}:*", versionEndExcluding="3.0")),
            node(crit("cpe:2.3:o:microsoft:windows_10:-", vulnerable=False)),
            operator="AND",
        )
    ]
    found = hit(on_windows, f"{APP}:2.0", "cpe:2.3:a:nginx:nginx:1.0")
    assert found and found.platform == "assumed"
    assert not hit(on_windows, f"{APP}:2.0", "cpe:2.3:o:linux:linux_kernel:6.1")


def test_non_vulnerable_criteria_alone_never_match():
    assert not hit([config(node(crit(f"{APP}:*", vulnerable=False)))], f"{APP}:1.0")


def test_records_without_configurations_match_nothing():
    assert hit([], f"{APP}:1.0") is None


@pytest.mark.parametrize(
    "raw",
    [
        "not a list",
        [{"nodes": "x"}],
        [{"nodes": [{"cpeMatch": [{"criteria": "cpe:/a:acme:pacs"}]}]}],
        [{"nodes": [{"operator": "XOR", "cpeMatch": []}]}],
        [
            {
                "nodes": [
                    {
                        "cpeMatch": [
                            {
                                "criteria": f"{full(APP)}",
                                "versionEndExcluding": "1",
                                "versionEndIncluding": "2",
                            }
                        ]
                    }
                ]
            }
        ],
    ],
)
def test_bad_shapes_are_refused(raw):
    with pytest.raises(ShapeError):
        parse_configurations(raw)


def test_cpe_parsing_and_values():
    name = parse(r"cpe:2.3:a:foo\:bar:baz:1.0")
    assert name.vendor == r"foo\:bar" and name.version == "1.0" and name.other == "*"
    assert value_matches(r"foo\:bar", r"foo\:bar")
    assert value_matches("1.2.?", "1.2.3") and not value_matches("1.2.?", "1.2.30")
    for bad in ["cpe:/a:acme:pacs", "cpe:2.3:x:acme:pacs", "cpe:2.3:a::pacs", "hello"]:
        with pytest.raises(CpeError):
            parse(bad)


# --- the real records: README known answers -------------------------------------------------


def test_1_orthanc():
    assert match("CVE-2023-33466", "cpe:2.3:a:orthanc-server:orthanc:1.11.3")
    assert not match("CVE-2023-33466", "cpe:2.3:a:orthanc-server:orthanc:1.12.0")
    assert records()["CVE-2023-33466"].cvss_score == 8.8
    assert records()["CVE-2023-33466"].cvss_version == "3.1"


def test_2_no_configurations_no_match():
    assert records()["CVE-2025-0896"].parsed == ()
    assert not match("CVE-2025-0896", "cpe:2.3:a:orthanc-server:orthanc:1.5.7")
    assert records()["CVE-2025-0896"].cvss_version == "4.0"  # v4.0 preferred over v3.1


def test_3_4_dcmtk():
    assert match("CVE-2022-2119", "cpe:2.3:a:offis:dcmtk:3.6.6")
    assert not match("CVE-2022-2119", "cpe:2.3:a:offis:dcmtk:3.6.7")
    assert match("CVE-2019-1010228", "cpe:2.3:a:offis:dcmtk:3.6.3")
    assert not match("CVE-2019-1010228", "cpe:2.3:a:offis:dcmtk:3.6.4")


def test_5_vendor_alias_dicom_offis():
    assert match("CVE-2015-8979", "cpe:2.3:a:dicom:dcmtk:3.6.0")
    assert not match("CVE-2015-8979", "cpe:2.3:a:offis:dcmtk:3.6.0")
    aliased = match("CVE-2015-8979", "cpe:2.3:a:offis:dcmtk:3.6.0", aliases=True)
    assert aliased and aliased.alias == "dicom"
    assert aliased.cpes == [full("cpe:2.3:a:offis:dcmtk:3.6.0")]
    assert not match("CVE-2015-8979", "cpe:2.3:a:offis:dcmtk:3.6.1", aliases=True)


def test_6_16_elasticsearch_vendors():
    assert match("CVE-2014-3120", "cpe:2.3:a:elasticsearch:elasticsearch:1.1.1")
    assert not match("CVE-2014-3120", "cpe:2.3:a:elasticsearch:elasticsearch:1.2")
    assert not match("CVE-2014-3120", "cpe:2.3:a:elastic:elasticsearch:1.1.1")
    assert match("CVE-2015-1427", "cpe:2.3:a:elastic:elasticsearch:1.4.2")
    assert not match("CVE-2015-1427", "cpe:2.3:a:elastic:elasticsearch:1.4.3")
    assert match("CVE-2015-1427", "cpe:2.3:a:elastic:elasticsearch:1.3.7")
    assert not match("CVE-2015-1427", "cpe:2.3:a:elastic:elasticsearch:1.3.8")
    assert not match("CVE-2015-1427", "cpe:2.3:a:elasticsearch:elasticsearch:1.4.2")
    assert match("CVE-2015-1427", "cpe:2.3:a:elasticsearch:elasticsearch:1.4.2", aliases=True)
    assert records()["CVE-2014-3120"].cisa_exploit_add.isoformat() == "2022-03-25"


def test_7_8_exact_versions():
    assert match("CVE-2011-2523", "cpe:2.3:a:vsftpd_project:vsftpd:2.3.4")
    assert not match("CVE-2011-2523", "cpe:2.3:a:vsftpd_project:vsftpd:2.3.5")
    assert match("CVE-2021-41773", "cpe:2.3:a:apache:http_server:2.4.49")
    assert not match("CVE-2021-41773", "cpe:2.3:a:apache:http_server:2.4.48")


def test_9_eternalblue_needs_its_vulnerable_half():
    windows = "cpe:2.3:o:microsoft:windows_7:-:sp1:*:*:*:*:*:*"
    smb = "cpe:2.3:a:microsoft:server_message_block:1.0"
    assert not match("CVE-2017-0144", windows)
    found = match("CVE-2017-0144", smb, windows)
    assert found and found.platform == "matched" and found.cpes == [full(smb)]
    assert not match("CVE-2017-0144", smb, "cpe:2.3:o:linux:linux_kernel:5.10")


def test_10_siemens_letter_suffixed_firmware():
    assert match("CVE-2017-0144", "cpe:2.3:o:siemens:acuson_sc2000_firmware:4.0b")
    assert not match("CVE-2017-0144", "cpe:2.3:o:siemens:acuson_sc2000_firmware:4.0e")


def test_13_openssh_update_field():
    assert match("CVE-2024-6387", "cpe:2.3:a:openbsd:openssh:9.7:p1")
    assert not match("CVE-2024-6387", "cpe:2.3:a:openbsd:openssh:9.8:p1")
    assert match("CVE-2024-6387", "cpe:2.3:a:openbsd:openssh:9.8:-")
    assert match("CVE-2024-6387", "cpe:2.3:a:openbsd:openssh:8.5:p1")
    assert not match("CVE-2024-6387", "cpe:2.3:a:openbsd:openssh:8.4:p1")


def test_14_samba_ranges_with_gaps():
    for version in ["4.5.9", "3.6.25"]:
        assert match("CVE-2017-7494", f"cpe:2.3:a:samba:samba:{version}"), version
    for version in ["4.5.10", "4.4.14", "3.4.17"]:
        assert not match("CVE-2017-7494", f"cpe:2.3:a:samba:samba:{version}"), version


def test_15_nginx_vendor_f5():
    assert match("CVE-2021-23017", "cpe:2.3:a:f5:nginx:1.20.0")
    assert not match("CVE-2021-23017", "cpe:2.3:a:f5:nginx:1.20.1")
    assert not match("CVE-2021-23017", "cpe:2.3:a:f5:nginx:0.6.17")
    assert not match("CVE-2021-23017", "cpe:2.3:a:nginx:nginx:1.20.0")


def test_17_mirth_connect_key_order():
    assert match("CVE-2023-43208", "cpe:2.3:a:nextgen:mirth_connect:4.4.0")
    assert not match("CVE-2023-43208", "cpe:2.3:a:nextgen:mirth_connect:4.4.1")
    assert records()["CVE-2023-43208"].cisa_exploit_add.isoformat() == "2024-05-20"


def test_every_sample_record_reads_and_unanalysed_ones_have_no_configurations():
    unanalysed = {
        "CVE-2024-27628",
        "CVE-2024-28130",
        "CVE-2025-0896",
        "CVE-2024-52333",
        "CVE-2025-2263",
        "CVE-2025-2264",
    }
    assert len(records()) == 35
    assert {cve for cve, r in records().items() if not r.parsed} == unanalysed
