"""Decoding and encoding of video and images; every write is atomic."""
