"""The Asset family: what the organisation owns, its addresses and tags, and its change history.

List-valued fields that probes read as a whole (host names, expected services, AE titles, software)
are JSON columns; addresses and tags, which are looked up one by one (uniqueness, filters), have
rows of their own.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, Optional

import netaddr
from pydantic import ConfigDict
from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Text, text
from sqlmodel import Field, Relationship, SQLModel

from inventory.models.types import IPAddressType, UTCDateTime, utcnow


class AssetKind(StrEnum):
    pacs = "pacs"
    modality = "modality"
    viewer_workstation = "viewer-workstation"
    web_viewer = "web-viewer"
    nas = "nas"
    database = "database"
    server = "server"
    network_device = "network-device"
    workstation = "workstation"
    other = "other"


class Criticality(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class Exposure(StrEnum):
    """Who is meant to reach the asset."""

    internal = "internal"
    vpn = "vpn"
    public = "public"


class AssetBase(SQLModel):
    """The fields a user edits, normalised (see inventory.validators)."""

    name: str = Field(max_length=200)
    kind: AssetKind = Field(default=AssetKind.other, sa_type=String(32))
    site: str = Field(default="", max_length=100)
    zone: str = Field(default="", max_length=100)
    owner: str = Field(default="", max_length=200)
    criticality: Criticality = Field(default=Criticality.medium, sa_type=String(16))
    holds_patient_data: bool = False
    exposure: Exposure = Field(default=Exposure.internal, sa_type=String(16))
    mac: str = Field(default="", max_length=17)
    notes: str = Field(default="", sa_type=Text)
    # Seconds between audits; None means the default for the asset's criticality (config).
    audit_interval: int | None = Field(default=None, sa_type=Integer)


class AssetData(AssetBase):
    """A complete, validated asset as the services take it in and give it out."""

    addresses: list[str] = []
    hostnames: list[str] = []
    expected_services: list[str] = []
    ae_titles: list[str] = []
    software: list[str] = []
    tags: list[str] = []
    optional_checks: list[str] = []


class Asset(AssetBase, table=True):
    __tablename__ = "asset"
    __table_args__ = (
        # One live asset per name (case-insensitive); archived ones keep theirs. Also the order
        # of the asset list.
        Index(
            "uq_asset_live_name",
            "name_key",
            unique=True,
            sqlite_where=text("archived_at IS NULL"),
            postgresql_where=text("archived_at IS NULL"),
        ),
        # The filter menus list the sites and zones of live assets from these alone.
        Index("ix_asset_site", "site", "archived_at"),
        Index("ix_asset_zone", "zone", "archived_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name_key: str = Field(max_length=200)
    hostnames: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    expected_services: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    ae_titles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    software: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Optional probes the user turned on for this asset (off by default): see OPTIONAL_CHECKS.
    optional_checks: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    # Lower-case name, addresses, host names and tags: one column for the free-text search.
    search_text: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    addresses: list["AssetAddress"] = Relationship(
        back_populates="asset",
        sa_relationship_kwargs={
            "cascade": "all, delete-orphan",
            "order_by": "AssetAddress.position",
            "lazy": "selectin",
        },
    )
    tags: list["AssetTag"] = Relationship(
        back_populates="asset",
        sa_relationship_kwargs={
            "cascade": "all, delete-orphan",
            "order_by": "AssetTag.tag",
            "lazy": "selectin",
        },
    )

    @property
    def address_list(self) -> list[netaddr.IPAddress]:
        return [row.address for row in self.addresses]

    @property
    def tag_list(self) -> list[str]:
        return [row.tag for row in self.tags]

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class AssetAddress(SQLModel, table=True):
    __tablename__ = "asset_address"
    model_config = ConfigDict(arbitrary_types_allowed=True)  # type: ignore[assignment]

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("asset.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    address: netaddr.IPAddress = Field(sa_column=Column(IPAddressType, nullable=False, index=True))
    position: int = 0

    asset: Optional["Asset"] = Relationship(back_populates="addresses")


class AssetTag(SQLModel, table=True):
    __tablename__ = "asset_tag"

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("asset.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    tag: str = Field(max_length=40, index=True)

    asset: Optional["Asset"] = Relationship(back_populates="tags")


class ChangeAction(StrEnum):
    created = "created"
    updated = "updated"
    archived = "archived"
    restored = "restored"


class AssetChange(SQLModel, table=True):
    """Who changed what on an asset, and when; kept when the asset is archived."""

    __tablename__ = "asset_change"

    id: int | None = Field(default=None, primary_key=True)
    asset_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("asset.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=64)
    action: ChangeAction = Field(sa_type=String(16))
    # {"field": [old, new]} in export notation; for "created", the initial values as [None, new].
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # "web", "import", "api", "cli": where the change came from.
    source: str = Field(default="web", max_length=16)

    # Many-to-one only: a new asset's first entry is attached without flushing for its id.
    asset: Optional["Asset"] = Relationship()
