"""Containers over files and buffers: typed arrays (and, later, id mappers and mappings)."""
