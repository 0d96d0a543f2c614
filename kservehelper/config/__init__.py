"""A model folder's configuration.

Locating the model (:mod:`.locate`), config.yaml (:mod:`.project`) and the files it names
(:mod:`.folder`, :mod:`.requirements`), its ``deploy:`` section (:mod:`.deploy`), the value
checks they share (:mod:`.checks`) and error formatting (:mod:`.errors`).
"""
