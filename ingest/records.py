"""The ingest record format (YAML/JSON), as pydantic models.

These models are the one source of truth for the record format: ``schemas/*.schema.json`` are
generated from them (``matdb schemas``) and a test fails when the two drift apart.

A record file is one :class:`Document`::

    matdb: 1
    source: {key: xiao2025, kind: publication, doi: 10.1038/s41467-025-56571-w, ...}
    syntheses: [...]
    samples: [...]
    measurements: [...]

Quantities are written as ``"275 degC"``, ``"48 min"``, ``{value: 275, unit: degC}`` or a bare
number in the quantity's canonical unit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from matdb.vocabulary import (
    ARRAY_KINDS,
    ID_MAX_LENGTH,
    ID_PUNCTUATION,
    OUTCOMES,
    PROVENANCES,
    SOURCE_KINDS,
    STEP_KINDS,
    TECHNIQUES,
    check_identifier,
)

FORMAT_VERSION = 1


class ValueUnit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: float
    unit: str = ""


#: "275 degC", 275 (canonical unit) or {value: 275, unit: degC}
QuantityInput = Annotated[str | float | int | ValueUnit, Field(union_mode="left_to_right")]

#: A sample, synthesis, series or measurement id: letters, digits, '_' and the punctuation of
#: matdb.vocabulary.ID_PUNCTUATION, starting with a letter, digit or '_' (never '=', '+', '-', '@').
SafeId = Annotated[str, AfterValidator(check_identifier), Field(
    max_length=ID_MAX_LENGTH,
    json_schema_extra={"$comment": "safe id: letters and digits (any script), '_' and "
                       f"'{ID_PUNCTUATION.strip()}' and inner spaces; starts with a letter, digit or '_'"})]

if TYPE_CHECKING:
    # The vocabularies are Literals built at run time from matdb.vocabulary, which a static checker
    # cannot evaluate; to mypy they are plain strings (pydantic validates the values at run time).
    Provenance = str
    Technique = str
    StepKind = str
    ArrayKind = str
    Outcome = str
    SourceKind = str
else:
    Provenance = Literal[PROVENANCES]
    Technique = Literal[tuple(TECHNIQUES)]
    StepKind = Literal[STEP_KINDS]
    ArrayKind = Literal[tuple(ARRAY_KINDS)]
    Outcome = Literal[tuple(OUTCOMES)]
    SourceKind = Literal[SOURCE_KINDS]


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Inferable(_Rec):
    """A record that may be an inference rather than a statement of its source."""

    inferred: bool = Field(default=False, description="true when the source does not state this (an assumption "
                                                      "or an inference); give the reason in inferred_reason")
    inferred_reason: str | None = Field(default=None, description="why and how it was inferred, quoting the source")

    @model_validator(mode="after")
    def _reason_for_inferences(self) -> _Inferable:
        if self.inferred and not (self.inferred_reason or "").strip():
            raise ValueError("an inferred record needs 'inferred_reason' (what the source says and why this "
                             "was inferred)")
        if self.inferred_reason and not self.inferred:
            raise ValueError("'inferred_reason' is given but 'inferred' is not true")
        return self


class SourceRecord(_Rec):
    """A publication, lab notebook or simulation that values come from."""

    key: str = Field(description="short unique key, e.g. 'xiao2025'")
    kind: SourceKind = "publication"
    doi: str | None = None
    title: str | None = None
    year: int | None = None
    journal: str | None = None
    authors: str | None = None
    url: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _doi_for_publications(self) -> SourceRecord:
        if self.kind == "publication" and not self.doi:
            raise ValueError("a publication source needs a 'doi'")
        return self


class QuantityRecord(_Rec):
    """A user-declared quantity (adds to matdb's registry)."""

    name: str
    unit: str = ""
    label: str | None = None
    min: float | None = None
    max: float | None = None
    categorical: bool = False
    description: str = ""
    direction: Literal["max", "min"] | None = Field(default=None, description="default direction as an objective")
    precision: float | None = Field(default=None, description="known measurement precision (one standard "
                                                              "uncertainty, in the quantity's unit)")


class ChemicalRecord(_Rec):
    """A precursor or reagent."""

    name: str = Field(description="name used to refer to it, e.g. 'PbI2' or 'FACl'")
    formula: str | None = Field(default=None, description="elemental formula for pymatgen; FA -> CH5N2")
    supplier: str | None = None
    purity: str | None = None
    cas: str | None = None
    note: str | None = None


class FamilyRecord(_Rec):
    """A material family definition (see matdb/data/families.yaml)."""

    slug: str
    name: str | None = None
    structure: Literal["ABX3", "A2BBX6", "composite"] = "ABX3"
    description: str = ""
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sites: dict[str, dict[str, str | float]] = Field(default_factory=dict)
    components: dict[str, str | float] = Field(default_factory=dict)
    precursors: list[dict[str, Any]] = Field(default_factory=list)
    species: dict[str, dict[str, Any]] = Field(default_factory=dict)
    references: list[str] = Field(default_factory=list)


class MillRecord(_Rec):
    """The mill and its settings."""

    model: str | None = Field(default=None, description="e.g. 'Retsch MM400'")
    type: Literal["mixer", "planetary", "vibratory", "attritor", "other"] | None = None
    frequency: QuantityInput | None = Field(default=None, description="'20 Hz' or '800 rpm'")
    jar_material: str | None = None
    jar_volume: QuantityInput | None = Field(default=None, description="e.g. '12 mL'")
    ball_material: str | None = None
    ball_size: QuantityInput | None = Field(default=None, description="diameter, e.g. '10 mm'")
    ball_count: int | None = None
    ball_mass: QuantityInput | None = Field(default=None, description="total ball mass, e.g. '16 g'")
    ball_to_powder_ratio: float | None = None


class AmountRecord(_Rec):
    """An amount of a chemical, or of a stored sample (two-stage routes), used in a synthesis or a step."""

    chemical: str | None = Field(default=None, description="name of a chemical (see 'chemicals')")
    sample: str | None = Field(default=None, description="id of a sample used as an ingredient (e.g. CsPbI3 milled "
                                                         "first, then milled with agZIF-62)")
    amount: QuantityInput | None = Field(default=None, description="mass or moles, e.g. '144.17 mg'")
    mol_pct: float | None = Field(default=None, description="amount relative to the product, mol %")
    role: Literal["precursor", "reagent", "additive", "matrix", "other"] = "precursor"
    note: str | None = None

    @model_validator(mode="after")
    def _chemical_or_sample(self) -> AmountRecord:
        if (self.chemical is None) == (self.sample is None):
            raise ValueError("an ingredient needs exactly one of 'chemical' or 'sample'")
        return self


class StepRecord(_Inferable):
    """One ordered process step."""

    kind: StepKind
    duration: QuantityInput | None = None
    temperature: QuantityInput | None = None
    atmosphere: str | None = None
    frequency: QuantityInput | None = None
    reagents: list[AmountRecord] = Field(default_factory=list)
    note: str | None = None


class SynthesisRecord(_Inferable):
    """One synthesis run."""

    id: SafeId
    family: str
    params: dict[str, float] = Field(description="composition parameters, e.g. {x: 0.8}")
    method: str = "ball milling"
    mill: MillRecord | None = None
    atmosphere: str | None = None
    batch_mass: QuantityInput | None = None
    date: str | None = None
    operator: str | None = None
    precursors: list[AmountRecord] = Field(default_factory=list)
    steps: list[StepRecord] = Field(default_factory=list)
    source: str | None = Field(default=None, description="source key; defaults to the file's source")
    locator: str | None = Field(default=None, description="section/figure/table in the source")
    provenance: Provenance | None = None
    proposal_id: str | None = None
    note: str | None = None


class SampleRecord(_Inferable):
    """The product at one point of a synthesis ("after 6 h milling")."""

    id: SafeId
    synthesis: str | None = Field(default=None, description="synthesis id; or give family and params")
    after_step: int | None = Field(
        default=None, description="number of synthesis steps completed (default: all)"
    )
    family: str | None = None
    params: dict[str, float] | None = None
    label: str | None = None
    process: dict[str, Annotated[bool | str | float | int | ValueUnit, Field(union_mode="left_to_right")]] = Field(
        default_factory=dict,
        description="process parameters not derivable from steps, e.g. {aging_time: '63 h'}",
    )
    source: str | None = None
    locator: str | None = None
    provenance: Provenance | None = None
    proposal_id: str | None = None
    outcome: Outcome | None = Field(
        default=None, description="what the synthesis gave: ok (the intended perovskite), or a failure: "
                                  + ", ".join(o for o in OUTCOMES if o != "ok"))
    note: str | None = None

    @model_validator(mode="after")
    def _synthesis_or_composition(self) -> SampleRecord:
        if self.synthesis is None and (self.family is None or self.params is None):
            raise ValueError("a sample needs 'synthesis' or both 'family' and 'params'")
        return self


class ResultRecord(_Inferable):
    """One scalar (or categorical) result."""

    quantity: str
    value: QuantityInput | None = None
    unit: str | None = Field(default=None, description="unit of a bare numeric value")
    uncertainty: float | None = Field(default=None, description="one standard uncertainty, same unit")
    approximate: bool = Field(default=False, description="the source says '~' or 'approximately'")
    range: tuple[QuantityInput, QuantityInput] | None = Field(
        default=None, description="reported range [low, high]"
    )
    text: str | None = Field(default=None, description="value of a categorical quantity")
    label: str | None = Field(default=None, description="what the value refers to: 'Cs 3d5/2', 'path 1'")
    locator: str | None = None
    note: str | None = None


class ArrayRecord(_Rec):
    """A whole spectrum or run, from a file next to the record or inline."""

    kind: ArrayKind
    file: str | None = Field(default=None, description="path relative to the record file")
    format: Literal["tlis_csv", "tlis_long_csv", "tlis_folder", "xy", "jcamp", "npy"] | None = None
    reference: str | None = Field(default=None, description="reference spectrum file (reflectance)")
    x: list[float] | None = None
    y: list[float] | None = None
    x_unit: str | None = None
    y_unit: str | None = None
    wavelength: QuantityInput | None = Field(default=None, description="X-ray wavelength for pXRD")
    note: str | None = None

    @model_validator(mode="after")
    def _file_or_inline(self) -> ArrayRecord:
        if self.file is None and (self.x is None or self.y is None):
            raise ValueError("an array needs 'file' or inline 'x' and 'y'")
        return self


#: The structure file formats (ingest.readers.structures reads them with ase).
StructureFormat = Literal["cif", "poscar", "extxyz", "xyz"]


class StructureRecord(_Rec):
    """A crystal structure file (CIF, POSCAR, extxyz)."""

    file: str
    format: StructureFormat | None = None
    description: str | None = None


class SeriesRecord(_Rec):
    """A study over several samples; its findings are measurements with ``series:`` (not any one
    sample's result)."""

    id: SafeId
    title: str
    family: str | None = None
    samples: list[str] = Field(default_factory=list, description="ids of the samples of the series")
    source: str | None = None
    locator: str | None = None
    provenance: Provenance | None = None
    note: str | None = None


class MeasurementRecord(_Inferable):
    """A measurement or calculation on a sample (or, for calculations, a composition), or a finding
    about a series of samples."""

    id: SafeId | None = Field(default=None, description="unique id; derived from sample and technique if absent")
    sample: str | None = None
    series: str | None = Field(default=None, description="id of a series: a finding about the series as a whole")
    family: str | None = None
    params: dict[str, float] | None = None
    technique: Technique
    instrument: str | None = None
    conditions: dict[str, QuantityInput | str] = Field(default_factory=dict)
    source: str | None = None
    locator: str | None = None
    provenance: Provenance | None = None
    results: list[ResultRecord] = Field(default_factory=list)
    arrays: list[ArrayRecord] = Field(default_factory=list)
    structures: list[StructureRecord] = Field(default_factory=list)
    note: str | None = None

    @model_validator(mode="after")
    def _target(self) -> MeasurementRecord:
        if self.sample is not None and self.series is not None:
            raise ValueError("a measurement is of a 'sample' or of a 'series', not both")
        if self.sample is None and self.series is None and (self.family is None or self.params is None):
            raise ValueError("a measurement needs 'sample', 'series', or both 'family' and 'params'")
        return self


class Document(_Rec):
    """One ingest file."""

    matdb: Literal[1] = Field(default=1, description="record format version")
    source: SourceRecord | None = Field(default=None, description="default source for every record")
    sources: list[SourceRecord] = Field(default_factory=list)
    quantities: list[QuantityRecord] = Field(default_factory=list)
    families: list[FamilyRecord] = Field(default_factory=list)
    chemicals: list[ChemicalRecord] = Field(default_factory=list)
    syntheses: list[SynthesisRecord] = Field(default_factory=list)
    samples: list[SampleRecord] = Field(default_factory=list)
    series: list[SeriesRecord] = Field(default_factory=list)
    measurements: list[MeasurementRecord] = Field(default_factory=list)


RECORD_TYPES: dict[str, type[BaseModel]] = {
    "document": Document,
    "source": SourceRecord,
    "quantity": QuantityRecord,
    "chemical": ChemicalRecord,
    "family": FamilyRecord,
    "synthesis": SynthesisRecord,
    "sample": SampleRecord,
    "series": SeriesRecord,
    "measurement": MeasurementRecord,
}
