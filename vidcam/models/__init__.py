"""Neural networks: encodings, the layered-atlas scene and the implicit camera."""
