"""Accounts: argon2 hashes, log-in and its throttling, roles, sessions, the first admin.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import argon2
import pytest
from sqlalchemy import func, select

from inventory.errors import Conflict, InvalidInput, LoginThrottled, NotFound
from inventory.models import LoginFailure, Role, User
from inventory.models.types import utcnow
from inventory.services import users as svc
from tests.factories import PASSWORD, make_user

REAL_HASHER = svc._hasher
POLICY = svc.LoginPolicy(max_failures=3, window=timedelta(minutes=15), min_password_length=10)


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """Cheaper argon2 parameters so that the many logins below stay quick (still argon2id)."""
    monkeypatch.setattr(
        svc, "_hasher", argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def login(session, username, password=PASSWORD, client="10.0.0.1", policy=POLICY):
    return svc.authenticate(
        session=session, username=username, password=password, client=client, policy=policy
    )


def failures(session) -> int:
    return session.scalar(select(func.count()).select_from(LoginFailure)) or 0


# --- passwords ------------------------------------------------------------------------------


def test_password_is_stored_as_an_argon2id_hash(session, monkeypatch):
    monkeypatch.setattr(svc, "_hasher", REAL_HASHER)
    alice = make_user(session, "viewer", username="alice")
    bob = make_user(session, "viewer", username="bob")
    assert alice.password_hash.startswith("$argon2id$")
    assert PASSWORD not in alice.password_hash
    assert alice.password_hash != bob.password_hash  # salted
    parameters = argon2.extract_parameters(alice.password_hash)
    assert parameters.memory_cost >= 19 * 1024 and parameters.time_cost >= 2  # OWASP minimum
    assert login(session, "alice") is not None


def test_generated_password_is_returned_once_and_works(session):
    user, generated = svc.create_user(session=session, username="alice", role=Role.auditor)
    assert generated and len(generated) >= 10 and generated not in user.password_hash
    assert login(session, "alice", generated).id == user.id
    _, given = svc.create_user(
        session=session, username="bob", role=Role.viewer, password="a long password"
    )
    assert given is None


@pytest.mark.parametrize("username", ["a", "bad name", "-dash", "x" * 65, "élodie", ""])
def test_bad_user_names_refused(session, username):
    with pytest.raises(InvalidInput) as caught:
        svc.create_user(session=session, username=username, role=Role.viewer, password=PASSWORD)
    assert "username" in caught.value.fields
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_user_name_taken_in_any_case(session):
    make_user(session, "viewer", username="Alice")
    with pytest.raises(Conflict) as caught:
        svc.create_user(session=session, username=" alice ", role=Role.admin, password=PASSWORD)
    assert "username" in caught.value.fields


def test_short_password_refused(session):
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        svc.create_user(session=session, username="alice", role=Role.viewer, password="short")
    assert svc.find_user(session=session, username="alice") is None


# --- logging in -----------------------------------------------------------------------------


def test_login_with_the_right_password(session):
    alice = make_user(session, "viewer", username="Alice")
    assert alice.last_login_at is None
    user = login(session, " alice ")
    assert user is not None and user.id == alice.id
    session.expire_all()
    assert session.get(User, alice.id).last_login_at is not None
    assert failures(session) == 0


@pytest.mark.parametrize("case", ["wrong password", "unknown user", "inactive"])
def test_login_refused_and_counted(session, case):
    make_user(session, "admin", username="root")
    alice = make_user(session, "viewer", username="alice")
    if case == "inactive":
        svc.update_user(session=session, user_id=alice.id, active=False)
    username, password = {
        "wrong password": ("alice", "not the password"),
        "unknown user": ("mallory", PASSWORD),
        "inactive": ("alice", PASSWORD),
    }[case]
    assert login(session, username, password, client="192.0.2.9") is None
    [failure] = session.scalars(select(LoginFailure)).all()
    assert (failure.username, failure.client) == (username, "192.0.2.9")


def test_throttled_per_account_from_many_addresses(session):
    make_user(session, "viewer", username="alice")
    for n in range(POLICY.max_failures):
        assert login(session, "alice", "guess", client=f"198.51.100.{n}") is None
    with pytest.raises(LoginThrottled) as caught:
        login(session, "ALICE", client="203.0.113.1")  # right password, fresh address
    assert "15 minutes" in str(caught.value)
    assert login(session, "bob-unrelated", "x", client="203.0.113.1") is None  # others unaffected


def test_throttled_per_address_across_accounts(session):
    make_user(session, "viewer", username="alice")
    for name in ("root", "admin", "bob"):
        assert login(session, name, "guess", client="198.51.100.7") is None
    with pytest.raises(LoginThrottled):
        login(session, "alice", client="198.51.100.7")
    assert login(session, "alice", client="198.51.100.8") is not None


def test_failures_older_than_the_window_do_not_count(session):
    make_user(session, "viewer", username="alice")
    old = utcnow() - POLICY.window - timedelta(minutes=1)
    ancient = utcnow() - 5 * POLICY.window
    session.add_all(
        [LoginFailure(username="alice", client="198.51.100.7", at=old) for _ in range(5)]
    )
    session.add(LoginFailure(username="alice", client="198.51.100.7", at=ancient))
    session.commit()
    assert login(session, "alice", "guess", client="198.51.100.7") is None  # not throttled
    assert login(session, "alice", client="198.51.100.7") is not None
    # very old rows are purged as logins happen
    assert (
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.at < utcnow() - 4 * POLICY.window)
        )
        == 0
    )


def test_success_clears_the_accounts_failures(session):
    make_user(session, "viewer", username="alice")
    for _ in range(POLICY.max_failures - 1):
        assert login(session, "alice", "typo") is None
    assert login(session, "alice") is not None
    for _ in range(POLICY.max_failures - 1):
        assert login(session, "alice", "typo") is None
    assert login(session, "alice") is not None  # 4 failures in the window, had none been cleared


# --- roles and the last admin ---------------------------------------------------------------


def test_last_active_admin_cannot_be_demoted_or_disabled(session):
    root = make_user(session, "admin", username="root")
    make_user(session, "viewer", username="alice")
    with pytest.raises(InvalidInput, match="at least one active administrator"):
        svc.update_user(session=session, user_id=root.id, role=Role.auditor)
    with pytest.raises(InvalidInput, match="at least one active administrator"):
        svc.update_user(session=session, user_id=root.id, active=False)
    session.expire_all()
    root = session.get(User, root.id)
    assert (root.role, root.active) == (Role.admin, True)


def test_with_two_admins_one_may_step_down(session):
    root = make_user(session, "admin", username="root")
    other = make_user(session, "admin", username="other")
    svc.update_user(session=session, user_id=root.id, role=Role.viewer)
    assert session.get(User, root.id).role == Role.viewer
    with pytest.raises(InvalidInput):
        svc.update_user(session=session, user_id=other.id, active=False)


def test_a_disabled_admin_does_not_count_but_may_be_demoted(session):
    root = make_user(session, "admin", username="root")
    old = make_user(session, "admin", username="old")
    svc.update_user(session=session, user_id=old.id, active=False)
    assert svc.count_admins(session=session) == 1
    with pytest.raises(InvalidInput):
        svc.update_user(session=session, user_id=root.id, active=False)
    svc.update_user(session=session, user_id=old.id, role=Role.viewer)
    assert session.get(User, old.id).role == Role.viewer


def test_roles_rank():
    assert Role.admin.allows(Role.auditor) and Role.auditor.allows(Role.viewer)
    assert not Role.viewer.allows(Role.auditor) and not Role.auditor.allows(Role.admin)


def test_locale_and_listing(session):
    alice = make_user(session, "viewer", username="alice")
    make_user(session, "admin", username="Bob")
    svc.update_user(session=session, user_id=alice.id, locale="fr")
    assert session.get(User, alice.id).locale == "fr"
    svc.update_user(session=session, user_id=alice.id, role=Role.auditor)  # locale kept
    assert session.get(User, alice.id).locale == "fr"
    svc.update_user(session=session, user_id=alice.id, locale=None)
    assert session.get(User, alice.id).locale is None
    assert [u.username for u in svc.list_users(session=session)] == ["alice", "Bob"]
    with pytest.raises(NotFound):
        svc.update_user(session=session, user_id=9999, locale="fr")


# --- sessions -------------------------------------------------------------------------------


def test_password_change_ends_other_sessions(session):
    alice = make_user(session, "viewer", username="alice")
    old_session = alice.get_id()
    assert svc.load_session_user(session=session, session_id=old_session).id == alice.id
    svc.set_password(session=session, user_id=alice.id, password="another long one")
    assert alice.get_id() != old_session
    assert svc.load_session_user(session=session, session_id=old_session) is None
    assert svc.load_session_user(session=session, session_id=alice.get_id()).id == alice.id
    assert login(session, "alice") is None
    assert login(session, "alice", "another long one") is not None


def test_short_new_password_refused(session):
    alice = make_user(session, "viewer", username="alice")
    token = alice.session_token
    with pytest.raises(InvalidInput):
        svc.set_password(session=session, user_id=alice.id, password="short")
    assert session.get(User, alice.id).session_token == token
    assert login(session, "alice") is not None


def test_disabling_ends_sessions(session):
    make_user(session, "admin", username="root")
    alice = make_user(session, "viewer", username="alice")
    session_id = alice.get_id()
    svc.update_user(session=session, user_id=alice.id, active=False)
    assert svc.load_session_user(session=session, session_id=session_id) is None
    svc.update_user(session=session, user_id=alice.id, active=True)
    assert svc.load_session_user(session=session, session_id=session_id) is None  # stays ended
    assert svc.load_session_user(session=session, session_id=alice.get_id()) is not None


@pytest.mark.parametrize(
    "session_id",
    [
        "",
        "abc",
        "1",
        "1:",
        "x:y",
        "999:abc",
        ":",
        "-1:abc",
        "99999999999999999999:abc",
        "²:abc",
        "1:é",
    ],
)
def test_bogus_session_ids(session, session_id):
    make_user(session, "viewer", username="alice")
    assert svc.load_session_user(session=session, session_id=session_id) is None


@pytest.mark.parametrize("user_id", [4242, 0, 2**63, 10**20])
def test_unknown_user_id(session, user_id):
    with pytest.raises(NotFound):
        svc.get_user(session=session, user_id=user_id)


# --- first admin ----------------------------------------------------------------------------


def test_first_admin_created_once(session):
    created = svc.ensure_first_admin(session=session, password=None)
    assert created is not None
    admin, password = created
    assert (admin.username, admin.role, admin.active) == ("admin", Role.admin, True)
    assert password and login(session, "admin", password) is not None
    assert svc.ensure_first_admin(session=session, password=None) is None
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_first_admin_with_a_chosen_password(session):
    admin, password = svc.ensure_first_admin(session=session, password="chosen password 1")
    assert password is None and login(session, "admin", "chosen password 1") is not None


def test_no_first_admin_when_any_account_exists(session):
    make_user(session, "viewer", username="alice")
    assert svc.ensure_first_admin(session=session, password=None) is None
    assert svc.find_user(session=session, username="admin") is None
