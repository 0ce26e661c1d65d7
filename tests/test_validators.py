"""The field parsers: what a user may type in a form, a CSV cell or a JSON field, and what they get.

Every parser either returns the normalised value or raises FieldError with a message a
non-specialist understands; nothing else may escape, whatever the input.
"""

from __future__ import annotations

from typing import Any

import netaddr
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from inventory import validators as v
from inventory.errors import InvalidInput
from inventory.services.assets import ASSET_FIELDS, data_to_record, validate_asset

KINDS = ["pacs", "modality", "viewer-workstation", "other"]


def error_of(parse: Any, *args: Any, **kwargs: Any) -> str:
    """The English message a user would see for this input."""
    with pytest.raises(v.FieldError) as caught:
        parse(*args, **kwargs)
    return str(caught.value)


# --- text -----------------------------------------------------------------------------------


def test_name_is_trimmed_and_required():
    assert v.parse_name("  PACS radiologie \t") == "PACS radiologie"
    assert "required" in error_of(v.parse_name, "   ")
    assert "required" in error_of(v.parse_name, None)


def test_name_length_and_control_characters():
    assert v.parse_name("x" * 200) == "x" * 200
    assert "at most 200" in error_of(v.parse_name, "x" * 201)
    assert "line breaks" in error_of(v.parse_name, "PACS\nradiologie")
    assert "invisible" in error_of(v.parse_name, "PACS\u200bradiologie")  # zero-width space


def test_label_is_one_trimmed_line():
    assert v.parse_label("  Lyon Est ") == "Lyon Est"
    assert v.parse_label(None) == ""
    assert "at most 100" in error_of(v.parse_label, "x" * 101)
    assert "at most 5" in error_of(v.parse_label, "abcdef", max_length=5)
    assert "line breaks" in error_of(v.parse_label, "a\tb")


def test_notes_keep_lines_and_normalise_windows_line_ends():
    assert v.parse_notes("  first\r\nsecond  ") == "first\nsecond"
    assert v.parse_notes(None) == ""
    assert "at most 10000" in error_of(v.parse_notes, "x" * 10_001)


def test_notes_drop_characters_no_database_can_store():
    # PostgreSQL refuses NUL in text; a lone surrogate cannot be encoded at all.
    assert v.parse_notes("call\x00 Bob\ud800 at 5") == "call Bob at 5"
    assert v.parse_notes("tab\tkept") == "tab\tkept"
    assert v.parse_notes("old\rmac\r\r\nlines") == "old\nmac\n\nlines"


def test_text_fields_refuse_values_that_are_not_text():
    # JSON imports can carry numbers, lists or objects where text is expected.
    for parse in (
        v.parse_name,
        v.parse_label,
        v.parse_notes,
        v.parse_mac,
        v.parse_address,
        v.parse_hostname,
        v.parse_ae_title,
        v.parse_cpe,
    ):
        assert "Expected text" in error_of(parse, 42), parse.__name__
    assert "Expected text" in error_of(v.parse_choice, ["pacs"], KINDS)
    assert "Expected text" in error_of(v.parse_tags, 7)
    assert "Expected text" in error_of(v.parse_addresses, {"a": 1}.values())
    assert "Expected text" in error_of(v.parse_services, 443)


@pytest.mark.parametrize("text", ["yes", "Y", "true", "1", "oui", "VRAI", "x", " o "])
def test_bool_true(text):
    assert v.parse_bool(text) is True


@pytest.mark.parametrize("text", ["no", "N", "false", "0", "non", "faux", "", None, False, 0])
def test_bool_false(text):
    assert v.parse_bool(text) is False


def test_bool_refuses_anything_else():
    assert "yes or no" in error_of(v.parse_bool, "maybe")
    assert "maybe" in error_of(v.parse_bool, "maybe")


def test_choice_normalises_spelling_and_lists_choices():
    assert v.parse_choice("Viewer Workstation", KINDS) == "viewer-workstation"
    assert v.parse_choice("viewer_workstation", KINDS) == "viewer-workstation"
    assert v.parse_choice(" PACS ", KINDS) == "pacs"
    assert v.parse_choice("", KINDS, default="other") == "other"
    message = error_of(v.parse_choice, "printer", KINDS)
    assert "printer" in message and "pacs, modality" in message
    assert "''" in error_of(v.parse_choice, "", KINDS)


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.20", "192.168.1.20"),
        (" 10.0.0.1 ", "10.0.0.1"),
        ("2001:DB8::20", "2001:db8::20"),
        ("2001:0db8:0000:0000:0000:0000:0000:0020", "2001:db8::20"),
        ("::1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("fe80::1", "fe80::1"),
        ("::ffff:192.168.1.20", "192.168.1.20"),
        ("::FFFF:c0a8:0114", "192.168.1.20"),
    ],
)
def test_address_accepted_and_normalised(text, expected):
    address = v.parse_address(text)
    assert str(address) == expected
    assert isinstance(address, netaddr.IPAddress)


def test_ipv4_mapped_ipv6_becomes_ipv4():
    assert v.parse_address("::ffff:10.1.2.3").version == 4


@pytest.mark.parametrize(
    "text",
    ["10.0.0.0/24", "10.0.0.1-10.0.0.9", "2001:db8::/64", "2001:db8::1-2001:db8::9", "10.0.0.5/32"],
)
def test_network_range_is_not_one_machine(text):
    message = error_of(v.parse_address, text)
    assert "not one machine's address" in message
    assert text in message


def test_range_with_spaces_in_a_list_is_refused():
    assert "network range" in error_of(v.parse_addresses, "10.0.0.1 - 10.0.0.9")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "required"),
        ("   ", "required"),
        ("pacs.local", "not an IP address"),
        ("1", "not an IP address"),  # not 0.0.0.1
        ("0x0a000001", "not an IP address"),
        ("10.0.0", "not an IP address"),
        ("10.0.0.256", "not an IP address"),
        ("10.0.0.*", "not an IP address"),
        ("fe80::1%eth0", "interface suffix"),
        ("0.0.0.0", "not a usable machine address"),
        ("::", "not a usable machine address"),
        ("::ffff:0.0.0.0", "not a usable machine address"),
        ("224.0.0.1", "multicast or broadcast"),
        ("ff02::1", "multicast or broadcast"),
        ("255.255.255.255", "multicast or broadcast"),
    ],
)
def test_address_refused_with_reason(text, words):
    assert words in error_of(v.parse_address, text)


def test_address_list_separators_and_order():
    addresses = v.parse_addresses("10.0.0.2, 10.0.0.1;2001:db8::1 \n 10.0.0.3")
    assert [str(a) for a in addresses] == ["10.0.0.2", "10.0.0.1", "2001:db8::1", "10.0.0.3"]
    assert v.parse_addresses(["10.0.0.1", "10.0.0.2; 10.0.0.3"]) == [
        netaddr.IPAddress(a) for a in ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    ]
    assert v.parse_addresses(None) == []
    assert v.parse_addresses(" ; ") == []


def test_address_listed_twice_even_in_another_notation():
    assert "listed twice" in error_of(v.parse_addresses, "10.0.0.1 ::ffff:10.0.0.1")
    assert "listed twice" in error_of(v.parse_addresses, "2001:db8::1 2001:DB8:0::1")


def _usable(address: netaddr.IPAddress) -> bool:
    return not (
        address.value == 0
        or address.is_multicast()
        or (address.version == 4 and address.value == 0xFFFFFFFF)
    )


@settings(max_examples=300)
@given(st.integers(min_value=1, max_value=2**32 - 1))
def test_every_usable_ipv4_round_trips(value):
    address = netaddr.IPAddress(value, 4)
    assume(_usable(address))
    parsed = v.parse_address(str(address))
    assert parsed == address and str(parsed) == str(address) and parsed.version == 4


@settings(max_examples=300)
@given(st.integers(min_value=1, max_value=2**128 - 1))
def test_every_usable_ipv6_round_trips(value):
    address = netaddr.IPAddress(value, 6)
    assume(_usable(address) and not address.is_ipv4_mapped())
    parsed = v.parse_address(str(address))
    assert parsed == address and str(parsed) == str(address) and parsed.version == 6
    # the expanded, upper-case spelling means the same machine
    assert v.parse_address(address.format(netaddr.ipv6_verbose).upper()) == address


@settings(max_examples=200)
@given(st.integers(min_value=1, max_value=2**32 - 2))
def test_every_ipv4_mapped_ipv6_becomes_its_ipv4(value):
    ipv4 = netaddr.IPAddress(value, 4)
    assume(_usable(ipv4))
    assert v.parse_address(f"::ffff:{ipv4}") == ipv4


# --- MAC ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "00:1b:63:84:45:e6",
        "00-1B-63-84-45-E6",
        "001b638445e6",
        "001b.6384.45e6",
        "0:1b:63:84:45:e6",
        " 00:1B:63:84:45:E6 ",
    ],
)
def test_mac_notations_normalised(text):
    assert v.parse_mac(text) == "00:1b:63:84:45:e6"


def test_mac_empty_is_allowed():
    assert v.parse_mac("") == "" and v.parse_mac(None) == "" and v.parse_mac("  ") == ""


@pytest.mark.parametrize(
    "text", ["00:1b:63:84:45", "zz:1b:63:84:45:e6", "1", "00:1b:63:ff:fe:84:45:e6", "10.0.0.1"]
)
def test_mac_refused(text):
    assert "not a MAC address" in error_of(v.parse_mac, text)


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=2**48 - 1))
def test_every_mac_round_trips(value):
    mac = netaddr.EUI(value, version=48)
    for dialect in (netaddr.mac_eui48, netaddr.mac_unix, netaddr.mac_cisco, netaddr.mac_bare):
        mac.dialect = dialect
        normalised = v.parse_mac(str(mac))
        assert netaddr.EUI(normalised) == netaddr.EUI(value)
        assert len(normalised) == 17 and normalised == normalised.lower()


# --- host names and tags --------------------------------------------------------------------


def test_hostname_normalised():
    assert v.parse_hostname(" PACS.Clinic.Local. ") == "pacs.clinic.local"
    assert v.parse_hostname("x" * 63) == "x" * 63
    assert v.parse_hostnames("pacs.local, viewer.local;nas") == [
        "pacs.local",
        "viewer.local",
        "nas",
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("-bad.example", "not a valid host name"),
        ("bad-.example", "not a valid host name"),
        ("a..b", "not a valid host name"),
        ("x" * 64, "not a valid host name"),
        (".".join(["abcdefghi"] * 26), "not a valid host name"),  # 259 characters
        ("pacs!.local", "not a valid host name"),
        ("pacs host", "not a valid host name"),
        ("192.168.1.1", "put it under Addresses"),
        ("::1", "put it under Addresses"),
        ("", "required"),
    ],
)
def test_hostname_refused(text, words):
    assert words in error_of(v.parse_hostname, text)


def test_hostname_listed_twice():
    assert "listed twice" in error_of(v.parse_hostnames, "pacs.local PACS.local.")


def test_tags_lowercased_deduplicated_sorted():
    assert v.parse_tags("Radiology, PACS; pacs urgences") == ["pacs", "radiology", "urgences"]
    assert v.parse_tags(["b", "a", "B"]) == ["a", "b"]
    assert v.parse_tags("site:lyon zone/dmz v1.2 c++") == ["c++", "site:lyon", "v1.2", "zone/dmz"]


@pytest.mark.parametrize("text", ["bad!tag", "x" * 41, "-leading", "a*b"])
def test_tag_refused(text):
    assert "not a valid tag" in error_of(v.parse_tags, text)


# --- services -------------------------------------------------------------------------------


def test_services_parsed_sorted_and_lowercased():
    services = v.parse_services("4242/tcp DICOM; 443/tcp https\n53/UDP dns, 80")
    assert [str(s) for s in services] == ["53/udp dns", "80/tcp", "443/tcp https", "4242/tcp dicom"]


def test_service_from_json_object():
    dicom = v.parse_service({"port": 104, "protocol": "tcp", "name": "dicom"})
    assert str(dicom) == "104/tcp dicom"
    assert str(v.parse_service({"port": 161, "protocol": "udp"})) == "161/udp"
    assert [str(s) for s in v.parse_services([{"port": 443}, "80/tcp http"])] == [
        "80/tcp http",
        "443/tcp",
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0/tcp", "out of range"),
        ("65536/tcp", "out of range"),
        ("80/sctp", "unknown; use tcp or udp"),
        ("http", "not a service"),
        ("80 /tcp", "not a service"),
        ("80/tcp two names", "not a service"),
        ("-1/tcp", "not a service"),
    ],
)
def test_service_refused(text, words):
    assert words in error_of(v.parse_services, text)


def test_service_listed_twice():
    assert "80/tcp is listed twice" in error_of(v.parse_services, "80/tcp; 80 http")
    assert len(v.parse_services("53/tcp; 53/udp")) == 2


# --- DICOM AE titles ------------------------------------------------------------------------


def test_ae_title_rules():
    assert v.parse_ae_title("  PACS SCP  ") == "PACS SCP"
    assert v.parse_ae_title("A" * 16) == "A" * 16
    assert "at most 16" in error_of(v.parse_ae_title, "A" * 17)
    assert "backslash" in error_of(v.parse_ae_title, "PACS\\SCP")
    assert "blank" in error_of(v.parse_ae_title, "   ")
    assert "plain letters" in error_of(v.parse_ae_title, "ÉCHO")
    assert "plain letters" in error_of(v.parse_ae_title, "A\tB")


def test_ae_titles_keep_inner_spaces_and_split_on_semicolons():
    assert v.parse_ae_titles("STORE SCP; FIND SCP\nMOVE") == ["STORE SCP", "FIND SCP", "MOVE"]
    assert v.parse_ae_titles(["ORTHANC", "MY AE"]) == ["ORTHANC", "MY AE"]
    assert "listed twice" in error_of(v.parse_ae_titles, "ORTHANC; ORTHANC ")


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=24))
def test_ae_title_property(text):
    stripped = text.strip()
    if stripped and len(stripped) <= 16 and "\\" not in stripped:
        assert v.parse_ae_title(text) == stripped
    else:
        with pytest.raises(v.FieldError):
            v.parse_ae_title(text)


# --- CPE 2.3 --------------------------------------------------------------------------------


def test_cpe_complete_name_is_kept_lowercase():
    name = "cpe:2.3:a:orthanc-server:orthanc:1.12.1:*:*:*:*:*:*:*"
    assert v.parse_cpe(name) == name
    assert v.parse_cpe(name.upper().replace("CPE:", "cpe:")) == name


def test_cpe_short_name_is_padded():
    assert v.parse_cpe("cpe:2.3:a:Orthanc-Server:Orthanc") == (
        "cpe:2.3:a:orthanc-server:orthanc:*:*:*:*:*:*:*:*"
    )
    assert v.parse_cpe("cpe:2.3:h:synology:ds918+".replace("+", "\\+")) == (
        "cpe:2.3:h:synology:ds918\\+:*:*:*:*:*:*:*:*"
    )


def test_cpe_escaped_colon_is_part_of_a_value():
    assert v.parse_cpe("cpe:2.3:a:acme:foo\\:bar:2.0") == (
        "cpe:2.3:a:acme:foo\\:bar:2.0:*:*:*:*:*:*:*"
    )


def test_cpe_22_form_refused_with_hint():
    message = error_of(v.parse_cpe, "cpe:/a:orthanc-server:orthanc:1.12.1")
    assert "old CPE 2.2 form" in message and "cpe:2.3:" in message


@pytest.mark.parametrize(
    "text",
    ["cpe:2.3:a:*:orthanc", "cpe:2.3:a:orthanc-server:-", "cpe:2.3:a:orthanc", "cpe:2.3:a"],
)
def test_cpe_needs_vendor_and_product(text):
    assert "vendor and the product" in error_of(v.parse_cpe, text)


@pytest.mark.parametrize(
    "text",
    [
        "orthanc",
        "cpe:2.2:a:orthanc-server:orthanc",
        "cpe:2.3:x:orthanc-server:orthanc",
        "cpe:2.3:a:orthanc server:orthanc",
        "cpe:2.3:a:vendor:product:1:*:*:*:*:*:*:*:*:extra",
        "cpe:2.3:a:vendor:product:1:*:*:english:*:*:*:*",
    ],
)
def test_cpe_refused(text):
    assert "CPE 2.3" in error_of(v.parse_cpe, text)


def test_cpes_list():
    assert v.parse_cpes("cpe:2.3:a:orthanc-server:orthanc; cpe:2.3:o:linux:linux_kernel:5.10") == [
        "cpe:2.3:a:orthanc-server:orthanc:*:*:*:*:*:*:*:*",
        "cpe:2.3:o:linux:linux_kernel:5.10:*:*:*:*:*:*:*",
    ]
    assert "listed twice" in error_of(v.parse_cpes, "cpe:2.3:a:a:b cpe:2.3:a:a:b:*:*:*:*:*:*:*:*")


def test_cpes_with_escaped_separators_stay_whole():
    # NVD names escape punctuation; "\\," and "\\;" are part of the value, not separators.
    assert v.parse_cpes("cpe:2.3:a:acme\\,_inc:foo\\;bar, cpe:2.3:a:b:c") == [
        "cpe:2.3:a:acme\\,_inc:foo\\;bar:*:*:*:*:*:*:*:*",
        "cpe:2.3:a:b:c:*:*:*:*:*:*:*:*",
    ]


# --- intervals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("24h", 86400),
        ("7d", 604800),
        ("1d12h", 129600),
        ("90m", 5400),
        ("2w", 1209600),
        ("1 D 2 H", 93600),
        ("15m", 900),
        ("366d", 366 * 86400),
        (3600, 3600),
    ],
)
def test_interval_parsed(text, seconds):
    assert v.parse_interval(text) == seconds


def test_interval_empty_means_default():
    assert v.parse_interval("") is None
    assert v.parse_interval(None) is None
    assert v.parse_interval(" ") is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("24", "not a duration"),
        ("1.5h", "not a duration"),
        ("-1h", "not a duration"),
        ("1y", "not a duration"),
        ("h", "not a duration"),
        (True, "not a duration"),
        ("14m", "between 15 minutes and 366 days"),
        ("367d", "between 15 minutes and 366 days"),
        (60, "between 15 minutes and 366 days"),
        (1000, "not a duration"),
    ],
)
def test_interval_refused(text, words):
    assert words in error_of(v.parse_interval, text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(86400, "1d"), (5400, "90m"), (604800, "1w"), (129600, "36h"), (None, ""), (900, "15m")],
)
def test_format_interval(seconds, text):
    assert v.format_interval(seconds) == text


@settings(max_examples=300)
@given(st.integers(min_value=v.MIN_INTERVAL // 60, max_value=v.MAX_INTERVAL // 60))
def test_interval_round_trips(minutes):
    seconds = minutes * 60
    text = v.format_interval(seconds)
    assert v.parse_interval(text) == seconds
    assert v.parse_interval(seconds) == seconds


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 999), st.sampled_from("wdhm")), min_size=1, max_size=4))
def test_interval_text_is_stable(parts):
    text = "".join(f"{n}{unit}" for n, unit in parts)
    try:
        seconds = v.parse_interval(text)
    except v.FieldError:
        return
    assert v.parse_interval(v.format_interval(seconds)) == seconds


# --- whatever a user types ------------------------------------------------------------------

PARSERS = {
    "parse_name": v.parse_name,
    "parse_label": v.parse_label,
    "parse_notes": v.parse_notes,
    "parse_bool": v.parse_bool,
    "parse_choice": lambda text: v.parse_choice(text, KINDS),
    "parse_address": v.parse_address,
    "parse_addresses": v.parse_addresses,
    "parse_mac": v.parse_mac,
    "parse_hostname": v.parse_hostname,
    "parse_hostnames": v.parse_hostnames,
    "parse_tags": v.parse_tags,
    "parse_service": v.parse_service,
    "parse_services": v.parse_services,
    "parse_ae_title": v.parse_ae_title,
    "parse_ae_titles": v.parse_ae_titles,
    "parse_cpe": v.parse_cpe,
    "parse_cpes": v.parse_cpes,
    "parse_interval": v.parse_interval,
}

# Text that looks like the real thing often enough to reach the deeper branches.
NEAR_MISS = st.one_of(
    st.text(),
    st.text(alphabet="0123456789abcdefABCDEF:.-/%; ", max_size=45),
    st.text(alphabet="cpe:2.3aho*-\\?_ ", max_size=60).map(lambda t: "cpe:2.3:" + t),
    st.text(alphabet="0123456789wdhm /tcpud", max_size=20),
)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(text=NEAR_MISS)
def test_parsers_raise_only_field_errors(name, text):
    try:
        PARSERS[name](text)
    except v.FieldError as exc:
        assert exc.render() and exc.message


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=100)
@given(text=NEAR_MISS)
def test_parsed_values_parse_again_to_themselves(name, text):
    parse = PARSERS[name]
    try:
        value = parse(text)
    except v.FieldError:
        return
    if isinstance(value, list):
        again = parse([str(item) for item in value])
        assert [str(i) for i in again] == [str(i) for i in value]
    elif value is not None and not isinstance(value, bool):
        assert str(parse(str(value) if name != "parse_interval" else v.format_interval(value))) == (
            str(value)
        )


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(ASSET_FIELDS), JSON_VALUES, max_size=6),
    st.sampled_from(["", "\ud800", "\udfff x", "\x00"]),
)
def test_any_json_asset_gives_field_messages_never_a_crash(raw, lone):
    """A JSON import can put any value in any field; the answer is per-field messages."""
    raw.setdefault("name", "pacs" + lone)
    try:
        data = validate_asset(raw)
    except InvalidInput as exc:
        assert exc.fields
        assert all(messages for messages in exc.fields.values())
        return
    # What was accepted can be written in the export notation and read back unchanged.
    record = data_to_record(data)
    assert validate_asset(record) == data


def test_validate_asset_reports_every_field_at_once():
    with pytest.raises(InvalidInput) as caught:
        validate_asset(
            {
                "name": "",
                "addresses": "10.0.0.0/24",
                "mac": "nope",
                "kind": "toaster",
                "colour": "blue",
            }
        )
    assert set(caught.value.fields) == {"name", "addresses", "mac", "kind", "_"}
    assert "colour" in caught.value.fields["_"][0][1]["fields"]


def test_validate_asset_defaults():
    data = validate_asset({"name": "PACS"})
    assert (data.kind, data.criticality, data.exposure) == ("other", "medium", "internal")
    assert data.addresses == [] and data.audit_interval is None and data.holds_patient_data is False


def test_name_whose_lower_case_key_would_not_fit():
    assert v.parse_name("İ" * 100) == "İ" * 100
    assert "at most 200" in error_of(v.parse_name, "İ" * 101)  # lowered, it is 202 characters


@pytest.mark.parametrize(
    "text", ["00:1b:63", "00:1b:63:84:45", "001b.6384", "00:1b:63:84:45:e6:77", "001b63"]
)
def test_partial_mac_is_refused_not_padded(text):
    assert "not a MAC address" in error_of(v.parse_mac, text)


def test_optional_checks_are_a_sorted_set_of_known_names():
    assert v.parse_optional_checks(None) == []
    assert v.parse_optional_checks("ae-title-guessing; Default credentials") == [
        "ae-title-guessing",
        "default-credentials",
    ]
    assert v.parse_optional_checks(["default-credentials", "default-credentials"]) == [
        "default-credentials"
    ]
    with pytest.raises(v.FieldError) as exc:
        v.parse_optional_checks("fuzzing")
    assert "default-credentials" in exc.value.render()
