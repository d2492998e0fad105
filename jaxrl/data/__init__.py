"""Data stores that live inside the jitted loop: a uniform replay ring buffer
(``replay``) and per-env sequence replay with samplers (``sequences``)."""
