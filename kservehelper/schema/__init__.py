"""From a model class to validated inputs: the input kinds (:mod:`.kinds`), one parameter
(:mod:`.fields`), one method's signature and JSON schema (:mod:`.signature`), and command-line
``-i`` values read by kind (:mod:`.cli_inputs`). Pure apart from reading the files ``-i @FILE``
names: no HTTP, no kserve import."""
