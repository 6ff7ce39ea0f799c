"""Text-to-image geo-retrieval (the seeds' second system): find satellite tiles, drone photos and
ground photos of a place from a description in words. See ``docs/retrieval.md``.

Importing this package loads nothing heavy; torch is imported by the modules that need it
(``model``, ``checkpoint``, ``train``, ``evaluate``, ``api``).
"""
