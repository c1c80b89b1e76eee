"""twinplatform: the state-owning core of the twin platform (config, database, storage, jobs, CLI).

`storage_layout` (names and paths) and `pipelines` (pure compute) know nothing of this package; it wires them.
"""

__version__ = "0.1.0"
