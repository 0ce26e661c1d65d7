"""The shortest path a user takes: log in, add an asset, see it listed."""

from __future__ import annotations

from tests.factories import PASSWORD, make_user


def test_login_add_and_list(client, session):
    make_user(session, "admin", username="alice")
    assert client.login("alice", PASSWORD).status_code == 302
    response = client.submit(
        "/assets/new",
        {
            "name": "PACS radiologie",
            "addresses": "192.168.10.5",
            "kind": "pacs",
            "criticality": "high",
            "exposure": "internal",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    listing = client.get("/assets?q=radiologie").get_data(as_text=True)
    assert "PACS radiologie" in listing
    assert "192.168.10.5" in listing
