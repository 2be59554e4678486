"""Folder put on sys.path, not imported as a package; the __init__ files make pip ship it."""
