"""Workflows composing the method layers; each is a sequence of stages run by the runner."""
