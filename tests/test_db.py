"""The database layer: SQLite pragmas on every connection, engines from settings, sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import netaddr
import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from inventory.db import engine_from_settings, make_engine, session_scope
from inventory.models import Asset, AssetAddress
from inventory.settings import load_settings


def pragmas(connection) -> tuple[str, int, int]:
    return (
        connection.exec_driver_sql("PRAGMA journal_mode").scalar(),
        connection.exec_driver_sql("PRAGMA foreign_keys").scalar(),
        connection.exec_driver_sql("PRAGMA busy_timeout").scalar(),
    )


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}", busy_timeout_ms=1234)
    try:
        # Every pooled connection, not only the first one.
        with engine.connect() as first, engine.connect() as second:
            assert pragmas(first) == ("wal", 1, 1234)
            assert pragmas(second) == ("wal", 1, 1234)
    finally:
        engine.dispose()


def test_engine_from_settings_passes_the_busy_timeout(tmp_path):
    settings = load_settings(
        {
            "general": {"var_dir": str(tmp_path / "nested" / "var")},
            "database": {"sqlite_busy_timeout_ms": 777},
        },
        environ={},
    )
    engine = engine_from_settings(settings)
    try:
        with engine.connect() as connection:
            assert pragmas(connection) == ("wal", 1, 777)
    finally:
        engine.dispose()
    assert (tmp_path / "nested" / "var" / "inventory.db").exists()  # folder created on demand


def test_sqlite_refuses_dangling_references(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'fk.db'}")
    SQLModel.metadata.create_all(engine)
    try:
        with engine.connect() as connection, pytest.raises(Exception, match="FOREIGN KEY"):
            connection.execute(
                text(
                    "INSERT INTO asset_address (asset_id, address, position) "
                    "VALUES (42, '10.0.0.1', 0)"
                )
            )
    finally:
        engine.dispose()


def test_readers_are_not_blocked_by_a_writer(tmp_path):
    """WAL: a page can be read while an import holds its write transaction open."""
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}", busy_timeout_ms=100)
    SQLModel.metadata.create_all(engine)
    try:
        with engine.connect() as writer, engine.connect() as reader:
            writer.exec_driver_sql("BEGIN IMMEDIATE")
            writer.execute(
                text(
                    "INSERT INTO asset (name, name_key, kind, site, zone, owner, criticality, "
                    "holds_patient_data, exposure, mac, notes, hostnames, expected_services, "
                    "ae_titles, software, search_text, created_at, updated_at) "
                    "VALUES ('a', 'a', 'other', '', '', "
                    "'', 'medium', 0, 'internal', '', '', '[]', '[]', '[]', '[]', '', "
                    "'2026-01-01', '2026-01-01')"
                )
            )
            assert reader.exec_driver_sql("SELECT count(*) FROM asset").scalar() == 0
            writer.exec_driver_sql("COMMIT")
            assert reader.exec_driver_sql("SELECT count(*) FROM asset").scalar() == 1
    finally:
        engine.dispose()


def test_session_scope_keeps_objects_usable_after_commit(engine):
    with session_scope(engine) as session:
        asset = Asset(name="PACS", name_key="pacs")
        session.add(asset)
        session.commit()
    assert asset.name == "PACS" and asset.id is not None  # no expired-attribute error


# --- column types, on both databases --------------------------------------------------------


def test_datetimes_come_back_aware_and_in_utc(session):
    paris = timezone(timedelta(hours=2))
    moment = datetime(2026, 6, 1, 14, 30, 15, 123456, tzinfo=paris)
    asset = Asset(name="PACS", name_key="pacs", created_at=moment, updated_at=moment)
    session.add(asset)
    session.commit()
    session.expunge_all()
    stored = session.get(Asset, asset.id)
    assert stored.created_at == moment
    assert stored.created_at.tzinfo == UTC and stored.created_at.hour == 12


def test_naive_datetimes_are_refused(session):
    session.add(Asset(name="PACS", name_key="pacs", created_at=datetime(2026, 1, 1)))
    with pytest.raises(Exception, match="naive datetime"):
        session.commit()
    session.rollback()


def test_addresses_come_back_as_netaddr_objects(session):
    asset = Asset(name="PACS", name_key="pacs")
    asset.addresses = [
        AssetAddress(address=netaddr.IPAddress("2001:0DB8::0001"), position=0),
        AssetAddress(address="10.0.0.1", position=1),
    ]
    session.add(asset)
    session.commit()
    session.expunge_all()
    stored = session.get(Asset, asset.id)
    assert stored.address_list == [netaddr.IPAddress("2001:db8::1"), netaddr.IPAddress("10.0.0.1")]
    raw = session.scalars(text("SELECT address FROM asset_address ORDER BY position")).all()
    assert raw == ["2001:db8::1", "10.0.0.1"]  # canonical text, comparable in SQL
