"""Offline algorithms on fixed datasets (BC, RCSL, IQL, MBRCSL) and their shared pieces
(``common``); the datasets themselves are ``jaxrl.data.datasets``."""
