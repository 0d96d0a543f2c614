"""A model folder's configuration.

Locating the model (:mod:`.locate`), config.yaml (:mod:`.project`), its ``deploy:`` section
(:mod:`.deploy`) and error formatting (:mod:`.errors`).
"""
