"""The REST API: token authentication, roles, and the same validation as the forms."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from inventory.models import Asset
from inventory.services.tokens import create_token, revoke_token
from tests.factories import make_asset, make_user


def _auth(session, role):
    user = make_user(session, role)
    _, secret = create_token(session=session, user_id=user.id, name="script")
    return {"Authorization": f"Bearer {secret}"}


def test_requires_a_valid_token(client, session):
    assert client.get("/api/v1/assets").status_code == 401
    body = client.get("/api/v1/assets", headers={"Authorization": "Bearer vigie_nope"}).get_json()
    assert body["code"] == "unauthorized"


def test_revoked_token_is_refused(client, session):
    user = make_user(session, "admin")
    token, secret = create_token(session=session, user_id=user.id, name="old")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/assets", headers=headers).status_code == 200
    revoke_token(session=session, token_id=token.id)
    assert client.get("/api/v1/assets", headers=headers).status_code == 401


def test_create_read_patch_archive(client, session):
    headers = _auth(session, "admin")
    created = client.post(
        "/api/v1/assets",
        headers=headers,
        json={
            "name": "Orthanc",
            "addresses": ["192.168.1.20"],
            "kind": "pacs",
            "expected_services": "4242/tcp dicom; 8042/tcp http",
            "tags": ["radiology"],
        },
    )
    assert created.status_code == 201, created.get_json()
    asset_id = created.get_json()["id"]
    assert created.get_json()["expected_services"] == ["4242/tcp dicom", "8042/tcp http"]
    patched = client.patch(
        f"/api/v1/assets/{asset_id}", headers=headers, json={"criticality": "critical"}
    )
    assert patched.get_json()["criticality"] == "critical"
    assert patched.get_json()["addresses"] == ["192.168.1.20"]
    listed = client.get("/api/v1/assets?q=orthanc", headers=headers).get_json()
    assert listed["total"] == 1 and listed["items"][0]["name"] == "Orthanc"
    assert (
        client.delete(f"/api/v1/assets/{asset_id}", headers=headers).get_json()["archived"] is True
    )
    assert client.get("/api/v1/assets", headers=headers).get_json()["total"] == 0


def test_invalid_input_names_the_field_and_writes_nothing(client, session):
    headers = _auth(session, "admin")
    response = client.post(
        "/api/v1/assets", headers=headers, json={"name": "x", "addresses": "10.0.0.0/24"}
    )
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "invalid" and "addresses" in body["fields"]
    assert session.scalar(select(func.count()).select_from(Asset)) == 0
    assert client.post("/api/v1/assets", headers=headers, data="not json").status_code == 422


def test_address_clash_is_a_conflict(client, session):
    headers = _auth(session, "admin")
    make_asset(session, name="first", addresses="10.1.1.1")
    response = client.post(
        "/api/v1/assets", headers=headers, json={"name": "second", "addresses": "10.1.1.1"}
    )
    assert response.status_code == 409
    assert "first" in response.get_json()["fields"]["addresses"][0]


@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_viewer_token_cannot_write(client, session, method):
    headers = _auth(session, "viewer")
    asset = make_asset(session)
    url = "/api/v1/assets" if method == "post" else f"/api/v1/assets/{asset.id}"
    response = getattr(client, method)(url, headers=headers, json={"name": "x"})
    assert response.status_code == 403
    assert client.get(f"/api/v1/assets/{asset.id}", headers=headers).status_code == 200


def test_bad_paging_arguments_are_clear(client, session):
    headers = _auth(session, "viewer")
    response = client.get("/api/v1/assets?page=abc", headers=headers)
    assert response.status_code == 422 and "page" in response.get_json()["message"]
    assert client.get("/api/v1/assets/999999", headers=headers).status_code == 404
