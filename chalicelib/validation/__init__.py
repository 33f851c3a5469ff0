"""Request and configuration documents validated by pydantic-core, without pydantic's model machinery.

The ``BaseModel`` classes stay the single source of truth (the OpenAPI document's schemas, the tests' judge);
``codegen`` writes the core schema pydantic builds for each into a generated module, and ``light.LightModel``
runs it. See docs/cold-start.md.
"""
