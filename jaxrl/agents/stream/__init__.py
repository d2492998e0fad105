"""Streaming learners, one transition per update (stream AC, Q and TD), and their shared
input pipeline and ObGD optimiser (``common``)."""
