"""From a model class to validated inputs: one parameter (:mod:`.fields`), one method's
signature and JSON schema (:mod:`.signature`). Pure: no I/O, no HTTP, no kserve import."""
