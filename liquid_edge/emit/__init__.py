"""Emitters: the IR as source code (``c_library`` for the float32 C library, ``naming`` for C identifiers)."""
