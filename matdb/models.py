"""The relational schema (SQLAlchemy 2 typed ORM).

Entities: Source, Chemical, Family, Material, Synthesis (+ SynthesisPrecursor, ProcessStep),
Sample, Series (a study over several samples, with its own findings), Measurement, Result (scalars
and categorical values), ArrayResult (whole spectra/runs as compressed blobs, see matdb.arrays),
Structure, IngestedFile and RecordVersion (provenance of every load and the history of explicit
updates), Campaign and Proposal (screening), SavedModel, CandidatePool.

What is inferred rather than stated by a source carries ``inferred = True`` and an
``inferred_reason`` (syntheses, steps, samples, measurements, results). The database user who wrote
a row is kept where people ask "who made this" (``created_by``: files, samples, campaigns, models,
pools). The schema version is the Alembic revision (``matdb init`` migrates).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")
BlobType = LargeBinary().with_variant(BYTEA(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}


class Source(Base):
    """A publication, notebook or simulation; every stored value points at one."""

    __tablename__ = "source"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text)  # publication|notebook|simulation|database|user
    doi: Mapped[str | None] = mapped_column(Text, unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None]
    journal: Mapped[str | None] = mapped_column(Text)
    authors: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)


class Chemical(Base):
    """A precursor or reagent."""

    __tablename__ = "chemical"
    __table_args__ = (UniqueConstraint("name", "supplier", "purity", name="uq_chemical_identity"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    formula: Mapped[str | None] = mapped_column(Text)
    supplier: Mapped[str | None] = mapped_column(Text)
    purity: Mapped[str | None] = mapped_column(Text)
    cas: Mapped[str | None] = mapped_column(Text)
    molar_mass: Mapped[float | None] = mapped_column(Float)  # g/mol, from pymatgen
    note: Mapped[str | None] = mapped_column(Text)


class Family(Base):
    """A material family; ``definition`` is its file form (matdb.families.Family.to_dict)."""

    __tablename__ = "family"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    structure: Mapped[str] = mapped_column(Text)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    definition: Mapped[dict[str, Any]]
    materials: Mapped[list[Material]] = relationship(back_populates="family", lazy="raise")


class Material(Base):
    """A composition of a family: parameters, site fractions, formula."""

    __tablename__ = "material"
    __table_args__ = (UniqueConstraint("family_id", "params_key", name="uq_material_composition"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id"), index=True)
    params: Mapped[dict[str, Any]]  # {"x": 0.8}
    params_key: Mapped[str] = mapped_column(Text)  # canonical text of params
    formula: Mapped[str] = mapped_column(Text, index=True)
    composition: Mapped[dict[str, Any]]  # {"A": {"FA": 0.8, "MA": 0.2}, ...} or components
    family: Mapped[Family] = relationship(back_populates="materials", lazy="raise")


#: The settings of a synthesis run, as stored on ``Synthesis`` (one list for loader, queries and UI).
SYNTHESIS_SETTINGS = (
    "method", "mill_model", "mill_type", "frequency_hz", "frequency_rpm", "jar_material", "jar_volume_ml",
    "ball_material", "ball_size_mm", "ball_count", "ball_mass_g", "ball_to_powder_ratio", "atmosphere",
    "batch_mass_mg", "date", "operator", "locator",
)


class Synthesis(Base):
    """One synthesis run (ball milling and what follows)."""

    __tablename__ = "synthesis"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("material.id"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"), index=True)
    locator: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text, default="ball milling")
    mill_model: Mapped[str | None] = mapped_column(Text)
    mill_type: Mapped[str | None] = mapped_column(Text)
    frequency_hz: Mapped[float | None]
    frequency_rpm: Mapped[float | None]
    jar_material: Mapped[str | None] = mapped_column(Text)
    jar_volume_ml: Mapped[float | None]
    ball_material: Mapped[str | None] = mapped_column(Text)
    ball_size_mm: Mapped[float | None]
    ball_count: Mapped[int | None]
    ball_mass_g: Mapped[float | None]
    ball_to_powder_ratio: Mapped[float | None]
    atmosphere: Mapped[str | None] = mapped_column(Text)
    batch_mass_mg: Mapped[float | None]
    date: Mapped[str | None] = mapped_column(Text)
    operator: Mapped[str | None] = mapped_column(Text)
    proposal_id: Mapped[str | None] = mapped_column(
        ForeignKey("proposal.key", ondelete="SET NULL"), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    inferred: Mapped[bool] = mapped_column(Boolean, default=False)
    inferred_reason: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(Text)
    material: Mapped[Material] = relationship(lazy="raise")
    source: Mapped[Source] = relationship(lazy="raise")
    precursors: Mapped[list[SynthesisPrecursor]] = relationship(
        back_populates="synthesis", cascade="all, delete-orphan", lazy="raise",
        order_by="SynthesisPrecursor.id")
    steps: Mapped[list[ProcessStep]] = relationship(
        back_populates="synthesis", cascade="all, delete-orphan", lazy="raise",
        order_by="ProcessStep.position")


class SynthesisPrecursor(Base):
    """An ingredient of a synthesis: a chemical, or a stored sample (two-stage routes: CsPbI3 milled
    first, then milled with agZIF-62)."""

    __tablename__ = "synthesis_precursor"
    id: Mapped[int] = mapped_column(primary_key=True)
    synthesis_id: Mapped[int] = mapped_column(ForeignKey("synthesis.id", ondelete="CASCADE"), index=True)
    chemical_id: Mapped[int | None] = mapped_column(ForeignKey("chemical.id"))
    sample_id: Mapped[int | None] = mapped_column(ForeignKey("sample.id"), index=True)
    step_position: Mapped[int | None]  # set for reagents added in a step
    role: Mapped[str] = mapped_column(Text, default="precursor")
    mass_mg: Mapped[float | None]
    amount_mmol: Mapped[float | None]
    mol_pct: Mapped[float | None]
    note: Mapped[str | None] = mapped_column(Text)
    synthesis: Mapped[Synthesis] = relationship(back_populates="precursors", lazy="raise")
    chemical: Mapped[Chemical | None] = relationship(lazy="raise")
    sample: Mapped[Sample | None] = relationship(lazy="raise", foreign_keys=[sample_id])


class ProcessStep(Base):
    """An ordered step: mill, add reagent, age/store, sinter/anneal, quench, ..."""

    __tablename__ = "process_step"
    __table_args__ = (UniqueConstraint("synthesis_id", "position", name="uq_process_step_position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    synthesis_id: Mapped[int] = mapped_column(ForeignKey("synthesis.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(Text)
    duration_min: Mapped[float | None]
    temperature_c: Mapped[float | None]
    atmosphere: Mapped[str | None] = mapped_column(Text)
    frequency_hz: Mapped[float | None]
    frequency_rpm: Mapped[float | None]
    note: Mapped[str | None] = mapped_column(Text)
    inferred: Mapped[bool] = mapped_column(Boolean, default=False)
    inferred_reason: Mapped[str | None] = mapped_column(Text)
    synthesis: Mapped[Synthesis] = relationship(back_populates="steps", lazy="raise")


class Sample(Base):
    """The product at one point of the process."""

    __tablename__ = "sample"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("material.id"), index=True)
    synthesis_id: Mapped[int | None] = mapped_column(ForeignKey("synthesis.id"), index=True)
    after_step: Mapped[int | None]
    label: Mapped[str | None] = mapped_column(Text)
    process: Mapped[dict[str, Any]]  # milling_time_min, aging_time_h, ... (derived + given)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"), index=True)
    locator: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[str] = mapped_column(Text, index=True)
    proposal_id: Mapped[str | None] = mapped_column(
        ForeignKey("proposal.key", ondelete="SET NULL"), index=True)
    #: matdb.vocabulary.OUTCOMES ("ok", "no_perovskite", "wrong_phase", ...); None = not recorded
    outcome: Mapped[str | None] = mapped_column(Text, index=True)
    note: Mapped[str | None] = mapped_column(Text)
    inferred: Mapped[bool] = mapped_column(Boolean, default=False)
    inferred_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(Text)
    material: Mapped[Material] = relationship(lazy="raise")
    synthesis: Mapped[Synthesis | None] = relationship(lazy="raise", foreign_keys=[synthesis_id])
    source: Mapped[Source] = relationship(lazy="raise")


class Series(Base):
    """A study over several samples ("the Br series", "sintering 150-400 °C"). Findings that the
    source states about the series as a whole are measurements of the series, not of any one of
    its samples."""

    __tablename__ = "series"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    title: Mapped[str] = mapped_column(Text)
    family_id: Mapped[int | None] = mapped_column(ForeignKey("family.id"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"), index=True)
    locator: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(Text)
    members: Mapped[list[SeriesMember]] = relationship(
        back_populates="series", cascade="all, delete-orphan", lazy="raise", order_by="SeriesMember.position")


class SeriesMember(Base):
    __tablename__ = "series_member"
    __table_args__ = (UniqueConstraint("series_id", "sample_id", name="uq_series_member_sample"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("sample.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    series: Mapped[Series] = relationship(back_populates="members", lazy="raise")


class Measurement(Base):
    """A measurement on a sample, a calculation on a material, or a finding about a series."""

    __tablename__ = "measurement"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    sample_id: Mapped[int | None] = mapped_column(ForeignKey("sample.id"), index=True)
    series_id: Mapped[int | None] = mapped_column(ForeignKey("series.id"), index=True)
    #: the composition measured; None only for findings about a series
    material_id: Mapped[int | None] = mapped_column(ForeignKey("material.id"), index=True)
    technique: Mapped[str] = mapped_column(Text, index=True)
    instrument: Mapped[str | None] = mapped_column(Text)
    conditions: Mapped[dict[str, Any]]
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id"), index=True)
    locator: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[str] = mapped_column(Text, index=True)
    note: Mapped[str | None] = mapped_column(Text)
    inferred: Mapped[bool] = mapped_column(Boolean, default=False)
    inferred_reason: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(Text)
    sample: Mapped[Sample | None] = relationship(lazy="raise")
    series: Mapped[Series | None] = relationship(lazy="raise")
    material: Mapped[Material | None] = relationship(lazy="raise")
    source: Mapped[Source] = relationship(lazy="raise")
    results: Mapped[list[Result]] = relationship(
        back_populates="measurement", cascade="all, delete-orphan", lazy="raise")
    arrays: Mapped[list[ArrayResult]] = relationship(
        back_populates="measurement", cascade="all, delete-orphan", lazy="raise")


class Result(Base):
    """A scalar result in its quantity's canonical unit (or a categorical text value).

    ``reported_value``/``reported_unit`` keep what the source said when it was converted
    (e.g. 29.7 kcal/mol stored as 1.288 eV). Derived results (computed by analysis) carry the
    ``method`` and ``method_version`` that produced them.
    """

    __tablename__ = "result"
    __table_args__ = (Index("ix_result_quantity_value", "quantity", "value"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    measurement_id: Mapped[int] = mapped_column(ForeignKey("measurement.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    quantity: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None]
    unit: Mapped[str] = mapped_column(Text, default="")
    uncertainty: Mapped[float | None]
    approximate: Mapped[bool] = mapped_column(Boolean, default=False)
    range_low: Mapped[float | None]
    range_high: Mapped[float | None]
    text: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    reported_value: Mapped[str | None] = mapped_column(Text)
    reported_unit: Mapped[str | None] = mapped_column(Text)
    locator: Mapped[str | None] = mapped_column(Text)
    derived: Mapped[bool] = mapped_column(Boolean, default=False)
    method: Mapped[str | None] = mapped_column(Text)
    method_version: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    inferred: Mapped[bool] = mapped_column(Boolean, default=False)
    inferred_reason: Mapped[str | None] = mapped_column(Text)
    measurement: Mapped[Measurement] = relationship(back_populates="results", lazy="raise")


class ArrayResult(Base):
    """A whole spectrum or TLIS run, stored as one compressed blob (see matdb.arrays)."""

    __tablename__ = "array_result"
    id: Mapped[int] = mapped_column(primary_key=True)
    measurement_id: Mapped[int] = mapped_column(ForeignKey("measurement.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(Text, index=True)
    shape: Mapped[list[Any]]
    axes: Mapped[dict[str, Any]]  # {"time": {"unit": "min", "n": 1000}, "wavelength": {...}}
    value_unit: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(Text, index=True)
    nbytes: Mapped[int]
    blob: Mapped[bytes] = mapped_column(BlobType, deferred=True)
    measurement: Mapped[Measurement] = relationship(back_populates="arrays", lazy="raise")


class Structure(Base):
    """A crystal structure (text of a CIF/POSCAR/extxyz) attached to a material or calculation."""

    __tablename__ = "structure"
    id: Mapped[int] = mapped_column(primary_key=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("material.id"), index=True)
    measurement_id: Mapped[int | None] = mapped_column(ForeignKey("measurement.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(Text)
    formula: Mapped[str | None] = mapped_column(Text)
    n_atoms: Mapped[int | None]
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)


class QuantityDefinition(Base):
    """A user-declared quantity, added to the built-in registry (matdb.units)."""

    __tablename__ = "quantity_definition"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    unit: Mapped[str] = mapped_column(Text, default="")
    label: Mapped[str] = mapped_column(Text)
    min: Mapped[float | None]
    max: Mapped[float | None]
    categorical: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    direction: Mapped[str | None] = mapped_column(Text)
    precision: Mapped[float | None]


class IngestedFile(Base):
    """Every load of a file: its content hash, when, and what it did."""

    __tablename__ = "ingested_file"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(Text, index=True)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(Text)  # added|unchanged|updated
    summary: Mapped[dict[str, Any]]
    created_by: Mapped[str | None] = mapped_column(Text)


class RecordVersion(Base):
    """A superseded version of a record, kept when an explicit update replaces it."""

    __tablename__ = "record_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text, index=True)
    content_hash: Mapped[str] = mapped_column(Text)
    content: Mapped[dict[str, Any]]
    replaced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("ingested_file.id"))


class RecordContent(Base):
    """The current record content by natural key, so an update can keep the old version."""

    __tablename__ = "record_content"
    __table_args__ = (UniqueConstraint("entity", "key", name="uq_record_content_entity_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(Text)
    content: Mapped[dict[str, Any]]


class BundledRecord(Base):
    """A record that the bundled data brought (matdb's own: the literature dataset and the simulated
    demonstration set), so that a newer bundled version replaces exactly these records and nothing
    a user loaded (:mod:`ingest.bundled`)."""

    __tablename__ = "bundled_record"
    __table_args__ = (UniqueConstraint("entity", "key", name="uq_bundled_record_entity_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset: Mapped[str] = mapped_column(Text, index=True)  # literature | demo
    entity: Mapped[str] = mapped_column(Text)  # synthesis | sample | series | measurement
    key: Mapped[str] = mapped_column(Text)


class BundledDataset(Base):
    """The version (content hash of its files) of each bundled dataset in the database."""

    __tablename__ = "bundled_dataset"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    version: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Campaign(Base):
    """A screening campaign: one call of `matdb propose`."""

    __tablename__ = "campaign"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id"), index=True)
    #: [{"name", "quantity", "direction", "target", "window", "weight"}, ...]
    objectives: Mapped[list[Any]]
    settings: Mapped[dict[str, Any]]
    model_cards: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(Text)
    family: Mapped[Family] = relationship(lazy="raise")
    proposals: Mapped[list[Proposal]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", lazy="raise")


class Proposal(Base):
    """One proposed experiment of a campaign."""

    __tablename__ = "proposal"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)  # proposal_id in plan.csv
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int]
    #: the run (mill session / furnace run) of a lab-shaped batch, 1-based; None without slots
    run: Mapped[int | None]
    #: "model" (model-based proposal) or "initial_design" (space-filling, too few results)
    design: Mapped[str] = mapped_column(Text, default="model")
    formula: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]]
    #: per objective {"mean", "std"}; plus p_feasible, extrapolation, milling time advice
    predictions: Mapped[dict[str, Any]]
    acquisition: Mapped[float | None]
    status: Mapped[str] = mapped_column(Text, default="proposed")  # proposed|made
    campaign: Mapped[Campaign] = relationship(back_populates="proposals", lazy="raise")


class SavedModel(Base):
    """A trained surrogate: its card (metrics, calibration, data hash) and skops bytes.

    ``data_hash`` identifies the training data and settings: a stored model is reused by rank and
    propose while it matches."""

    __tablename__ = "saved_model"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    target: Mapped[str] = mapped_column(Text)
    data_hash: Mapped[str] = mapped_column(Text, index=True)
    card: Mapped[dict[str, Any]]
    blob: Mapped[bytes] = mapped_column(BlobType, deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(Text)
    families: Mapped[list[Family]] = relationship(secondary="saved_model_family", lazy="raise")


class SavedModelFamily(Base):
    __tablename__ = "saved_model_family"
    model_id: Mapped[int] = mapped_column(ForeignKey("saved_model.id", ondelete="CASCADE"), primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id"), primary_key=True)


class CandidatePool(Base):
    """A list of candidates a lab can actually make (rows of family parameters and process
    values), uploaded once and chosen from by rank/propose. The rows are a Parquet blob."""

    __tablename__ = "candidate_pool"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("family.id"), index=True)
    columns: Mapped[list[Any]]
    n_rows: Mapped[int]
    sha256: Mapped[str] = mapped_column(Text, index=True)
    blob: Mapped[bytes] = mapped_column(BlobType, deferred=True)
    source_file: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(Text)
    family: Mapped[Family] = relationship(lazy="raise")
